//! Every WGSL file under `shaders/` parses and validates with naga (as part of the module it
//! is compiled into), and every module compiles on a real adapter when one is found.

mod common;

use kernels_wgpu::Shader;
use std::collections::BTreeSet;
use tensor::backend::prelude::*;
use wgpu::naga;

#[test]
fn every_shader_file_validates_with_naga() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shaders");
    let files: BTreeSet<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".wgsl"))
        .collect();
    let mut covered = BTreeSet::new();
    for shader in Shader::ALL {
        let module = naga::front::wgsl::parse_str(shader.source())
            .unwrap_or_else(|e| panic!("{shader:?}: {}", e.emit_to_string(shader.source())));
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
            .validate(&module)
            .unwrap_or_else(|e| panic!("{shader:?} does not validate: {e:?}"));
        // The module is exactly its files, concatenated.
        let text: String =
            shader.files().iter().map(|f| std::fs::read_to_string(format!("{dir}/{f}")).unwrap()).collect();
        assert_eq!(text, shader.source(), "{shader:?} is not built from {:?}", shader.files());
        covered.extend(shader.files().iter().map(|f| f.to_string()));
    }
    assert_eq!(covered, files, "every file under shaders/ belongs to a module");
}

#[test]
fn every_entry_point_compiles_on_the_device() {
    let Some(backend) = common::backend() else { return };
    // Touch each kernel family once so pipeline creation runs on the driver.
    let x = backend.upload(&[1.0, 2.0, 3.0, 4.0]).unwrap();
    backend.unary(tensor::UnaryOp::Exp, &x).unwrap();
    backend.softmax(&x, 2, 2, false).unwrap();
    backend.argmax(&x, 2, 2).unwrap();
    backend.dropout_mask(4, 0.5, 1).unwrap();
    backend.sync().unwrap();
}
