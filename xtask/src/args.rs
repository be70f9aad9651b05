//! A small `--flag value` parser: xtask's commands take a handful of flags, and a clear
//! error for an unknown or malformed one matters more than generality.

use std::collections::HashMap;
use std::str::FromStr;

/// Parsed flags of one command.
pub struct Args {
    values: HashMap<String, String>,
    switches: Vec<String>,
}

impl Args {
    /// Parses `args`, accepting `--name value` for `valued` names and bare `--name` for
    /// `switches`; anything else is an error.
    pub fn parse(args: &[String], valued: &[&str], switches: &[&str]) -> Result<Args, String> {
        let mut values = HashMap::new();
        let mut on = Vec::new();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let name = arg.strip_prefix("--").ok_or_else(|| format!("unexpected argument '{arg}'"))?;
            let (name, inline) = match name.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (name, None),
            };
            if valued.contains(&name) {
                let v = match inline {
                    Some(v) => v,
                    None => it.next().ok_or_else(|| format!("--{name} needs a value"))?.clone(),
                };
                values.insert(name.to_string(), v);
            } else if switches.contains(&name) && inline.is_none() {
                on.push(name.to_string());
            } else {
                return Err(format!("unknown flag --{name}"));
            }
        }
        Ok(Args { values, switches: on })
    }

    /// The value of `--name`, parsed, or `default`.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.values.get(name) {
            Some(v) => v.parse().map_err(|_| format!("--{name}: cannot parse '{v}'")),
            None => Ok(default),
        }
    }

    /// The value of `--name`, parsed, if given.
    pub fn optional<T: FromStr>(&self, name: &str) -> Result<Option<T>, String> {
        self.values
            .get(name)
            .map(|v| v.parse().map_err(|_| format!("--{name}: cannot parse '{v}'")))
            .transpose()
    }

    /// The comma-separated values of `--name` (or of `default`), each parsed; the error
    /// names the flag and the piece that failed, with the parser's reason.
    pub fn list<T: FromStr>(&self, name: &str, default: &str) -> Result<Vec<T>, String>
    where
        T::Err: std::fmt::Display,
    {
        self.value(name)
            .unwrap_or(default)
            .split(',')
            .map(|s| s.trim().parse().map_err(|e| format!("--{name}: cannot parse '{s}': {e}")))
            .collect()
    }

    /// The raw value of `--name`, if given.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Whether the switch `--name` was given.
    pub fn switch(&self, name: &str) -> bool {
        self.switches.iter().any(|s| s == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> Args {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        Args::parse(&argv, &["sizes"], &[]).unwrap()
    }

    #[test]
    fn lists_parse_each_piece_or_name_the_bad_one() {
        assert_eq!(parse(&["--sizes", "512, 2560"]).list::<usize>("sizes", "1").unwrap(), vec![512, 2560]);
        assert_eq!(parse(&[]).list::<usize>("sizes", "7,8").unwrap(), vec![7, 8]);
        let err = parse(&["--sizes=512,x"]).list::<usize>("sizes", "1").unwrap_err();
        assert!(err.starts_with("--sizes: cannot parse 'x'"), "{err}");
    }
}
