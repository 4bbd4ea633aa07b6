//! Runtime options CRI attaches to Create: `runtimeoptions.v1.Options`, whose `config_body`
//! is the TOML of the runtime's `options` table in containerd's config. The shim protos
//! crate lacks this message, so we read the one field we need by hand.

use containerd_shim_protos::protobuf::well_known_types::any::Any;

const TYPE_URL: &str = "runtimeoptions.v1.Options";
const CONFIG_BODY_FIELD: u64 = 3;

/// Whether the runtime's options say `SystemdCgroup = true`.
pub fn systemd_cgroup(options: Option<&Any>) -> bool {
    flag(options, "SystemdCgroup")
}

/// Whether the runtime's options say `PauseWithRunc = true`: pod sandboxes are then started
/// through runc, not by the shim itself (see `pause`).
pub fn pause_with_runc(options: Option<&Any>) -> bool {
    flag(options, "PauseWithRunc")
}

fn flag(options: Option<&Any>, key: &str) -> bool {
    let Some(any) = options else { return false };
    if !any.type_url.ends_with(TYPE_URL) {
        return false;
    }
    let Some(body) = string_field(&any.value, CONFIG_BODY_FIELD) else {
        return false;
    };
    body.parse::<toml_edit::DocumentMut>()
        .ok()
        .and_then(|doc| doc.get(key).and_then(|v| v.as_bool()))
        .unwrap_or(false)
}

/// Finds a length-delimited field in protobuf wire data.
fn string_field(mut buf: &[u8], want: u64) -> Option<String> {
    while !buf.is_empty() {
        let (key, n) = varint(buf)?;
        buf = &buf[n..];
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => buf = &buf[varint(buf)?.1..],
            1 => buf = buf.get(8..)?,
            5 => buf = buf.get(4..)?,
            2 => {
                let (len, n) = varint(buf)?;
                let end = n + usize::try_from(len).ok()?;
                let data = buf.get(n..end)?;
                if field == want {
                    return String::from_utf8(data.to_vec()).ok();
                }
                buf = &buf[end..];
            }
            _ => return None,
        }
    }
    None
}

fn varint(buf: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, b) in buf.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(body: &str) -> Any {
        // field 1 (type_url) then field 3 (config_body), as containerd encodes them.
        let mut v = vec![0x0a, 3, b'a', b'b', b'c', 0x1a, body.len() as u8];
        v.extend_from_slice(body.as_bytes());
        let mut any = Any::new();
        any.type_url = TYPE_URL.into();
        any.value = v;
        any
    }

    #[test]
    fn systemd_cgroup_is_read_from_the_options_toml() {
        assert!(systemd_cgroup(Some(&options("SystemdCgroup = true\n"))));
        assert!(!systemd_cgroup(Some(&options("SystemdCgroup = false\n"))));
        assert!(!systemd_cgroup(Some(&options("not toml ["))));
        assert!(!systemd_cgroup(None));
    }

    #[test]
    fn pause_with_runc_is_off_unless_the_options_say_so() {
        let both = options("SystemdCgroup = true\nPauseWithRunc = true\n");
        assert!(pause_with_runc(Some(&both)));
        assert!(systemd_cgroup(Some(&both)));
        assert!(!pause_with_runc(Some(&options("SystemdCgroup = true\n"))));
        assert!(!pause_with_runc(None));
    }
}
