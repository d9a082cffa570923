//! Host and process attributes of the resource.

use opentelemetry::KeyValue;

pub(crate) fn host_and_process() -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new("process.pid", i64::from(std::process::id())),
        KeyValue::new("process.runtime.name", "rust"),
    ];
    let host = rustix::system::uname();
    if let Ok(name) = host.nodename().to_str()
        && !name.is_empty()
    {
        attributes.push(KeyValue::new("host.name", name.to_owned()));
    }
    if let Ok(arch) = host.machine().to_str() {
        attributes.push(KeyValue::new("host.arch", arch.to_owned()));
    }
    if let Some(name) = std::env::current_exe().ok().and_then(|path| {
        path.file_name()
            .map(|name| name.to_string_lossy().into_owned())
    }) {
        attributes.push(KeyValue::new("process.executable.name", name));
    }
    attributes
}
