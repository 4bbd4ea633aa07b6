//! The whole node-local flow on temporary directories: host commands run locally, the "shim"
//! is a script answering `-v`, the "restart" appends to a file, containerd's socket is a
//! listener the test owns.

use std::os::unix::net::UnixListener;

use super::*;

struct Node {
    dir: tempfile::TempDir,
    settings: Settings,
    _socket: UnixListener,
}

impl Node {
    fn new(config_name: &str, config: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let source = root.join("image/containerd-shim-wasmpod-v1");
        fs::create_dir_all(source.parent().unwrap()).unwrap();
        fs::write(
            &source,
            "#!/bin/sh\necho containerd-shim-wasmpod-v1 0.1.0\n",
        )
        .unwrap();
        let etc = root.join("etc/containerd");
        fs::create_dir_all(&etc).unwrap();
        let config_path = etc.join(config_name);
        if let Some(text) = config {
            fs::write(&config_path, text).unwrap();
        }
        let socket_path = root.join("containerd.sock");
        let socket = UnixListener::bind(&socket_path).unwrap();
        let settings = Settings {
            shim_source: source,
            install_dir: root.join("opt/wasmpod/bin"),
            containerd_config: config_path,
            config_version: None,
            systemd_cgroup: SystemdCgroup::Auto,
            restart_command: format!("echo restart >> {}/restarts", root.display()),
            containerd_socket: Some(socket_path),
            check_config_command: "cat {config}".into(),
            verify_command: String::new(),
            host: Host::Local,
            timeout: Duration::from_secs(10),
            version: "0.1.0".into(),
        };
        Self {
            dir,
            settings,
            _socket: socket,
        }
    }

    fn restarts(&self) -> usize {
        fs::read_to_string(self.dir.path().join("restarts"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    fn config(&self) -> Option<String> {
        fs::read_to_string(&self.settings.containerd_config).ok()
    }
}

fn fixture(name: &str) -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    fs::read_to_string(Path::new(dir).join(name)).unwrap()
}

#[test]
fn install_is_idempotent_and_uninstall_restores_the_node() {
    let original = fixture("containerd-2.x.toml");
    let node = Node::new("config.toml", Some(&original));
    let s = &node.settings;

    let first = install(s).unwrap();
    assert!(first.binary_changed && first.config_changed && first.restarted);
    assert_eq!(node.restarts(), 1);
    let config = node.config().unwrap();
    let link = s.runtime_path();
    assert!(config.contains(&format!("runtime_path = \"{}\"", link.display())));
    assert!(fs::read_link(&link).is_ok(), "runtime_path is the symlink");

    let second = install(s).unwrap();
    assert_eq!(second, Report::default(), "re-run changes nothing");
    assert_eq!(node.restarts(), 1, "no restart without a change");
    assert_eq!(node.config().unwrap(), config);

    let removed = uninstall(s).unwrap();
    assert!(removed.config_changed && removed.restarted && removed.binary_changed);
    assert_eq!(node.restarts(), 2);
    assert_eq!(
        node.config().unwrap(),
        original,
        "config restored byte for byte"
    );
    assert!(!s.install_dir.exists(), "binaries and state removed");

    assert_eq!(
        uninstall(s).unwrap(),
        Report::default(),
        "second uninstall: no-op"
    );
    assert_eq!(node.restarts(), 2);
}

#[test]
fn new_shim_switches_the_link_without_restarting_containerd() {
    let node = Node::new("config.toml", Some(&fixture("containerd-1.7.toml")));
    let s = &node.settings;
    install(s).unwrap();
    let old = fs::read_link(s.runtime_path()).unwrap();
    fs::write(
        &s.shim_source,
        "#!/bin/sh\necho containerd-shim-wasmpod-v1 0.1.1\n",
    )
    .unwrap();
    let upgrade = install(s).unwrap();
    assert!(upgrade.binary_changed);
    assert!(!upgrade.config_changed && !upgrade.restarted);
    assert_eq!(node.restarts(), 1);
    assert_ne!(fs::read_link(s.runtime_path()).unwrap(), old);
    assert_eq!(
        upgrade.pruned,
        vec![s.install_dir.join(old)],
        "old version deleted"
    );
}

#[test]
fn unknown_version_leaves_the_file_untouched_and_containerd_alone() {
    let original = fixture("unknown-version.toml");
    let node = Node::new("config.toml", Some(&original));
    let err = install(&node.settings).unwrap_err();
    assert!(err.to_string().contains("version = 4"), "{err}");
    assert_eq!(node.config().unwrap(), original);
    assert_eq!(node.restarts(), 0);
}

#[test]
fn broken_file_is_left_untouched() {
    let original = fixture("broken.toml");
    let node = Node::new("config.toml", Some(&original));
    let err = install(&node.settings).unwrap_err();
    assert!(matches!(err, Error::Toml { .. }), "{err}");
    assert_eq!(node.config().unwrap(), original);
    assert_eq!(node.restarts(), 0);
}

#[test]
fn rejected_config_is_put_back_and_containerd_not_restarted() {
    let original = fixture("containerd-1.7.toml");
    let mut node = Node::new("config.toml", Some(&original));
    node.settings.check_config_command = "sh -c 'echo invalid config; exit 1'".into();
    let err = install(&node.settings).unwrap_err();
    assert!(err.to_string().contains("invalid config"), "{err}");
    assert!(err.to_string().contains("config restored"), "{err}");
    assert_eq!(node.config().unwrap(), original);
    assert_eq!(node.restarts(), 0);
}

#[test]
fn missing_check_program_skips_the_check() {
    let mut node = Node::new("config.toml", Some(&fixture("containerd-1.7.toml")));
    node.settings.check_config_command = "no-such-containerd --config {config} config dump".into();
    assert!(install(&node.settings).unwrap().restarted);
}

#[test]
fn previous_runtime_entry_comes_back_on_uninstall() {
    let original = fixture("other-wasmpod-entry.toml");
    let node = Node::new("config.toml", Some(&original));
    install(&node.settings).unwrap();
    assert!(!node.config().unwrap().contains("/var/cache/wasmpod/target"));
    // A second install must not record our own entry as "previous".
    install(&node.settings).unwrap();
    uninstall(&node.settings).unwrap();
    assert_eq!(node.config().unwrap(), original);
}

#[test]
fn k3s_template_is_created_and_removed() {
    let node = Node::new("config-v3.toml.tmpl", None);
    let s = &node.settings;
    let r = install(s).unwrap();
    assert!(r.config_changed && r.restarted);
    let text = node.config().unwrap();
    assert!(text.starts_with(template::BASE), "{text}");
    assert!(text.contains("io.containerd.cri.v1.runtime"));
    assert!(!install(s).unwrap().restarted);
    uninstall(s).unwrap();
    assert_eq!(
        node.config(),
        None,
        "template that only held our block is deleted"
    );
}

#[test]
fn k3s_generated_config_is_refused_with_a_pointer_to_the_template() {
    let generated =
        "# File generated by k3s. DO NOT EDIT. Use config.toml.tmpl instead.\nversion = 2\n";
    let node = Node::new("config.toml", Some(generated));
    let err = install(&node.settings).unwrap_err();
    assert!(err.to_string().contains("config.toml.tmpl"), "{err}");
    assert_eq!(node.config().unwrap(), generated);
}

#[test]
fn missing_config_needs_a_version() {
    let mut node = Node::new("config.toml", None);
    let err = install(&node.settings).unwrap_err();
    assert!(err.to_string().contains("--config-version"), "{err}");
    node.settings.config_version = Some(2);
    install(&node.settings).unwrap();
    let config = node.config().unwrap();
    assert!(
        config.starts_with(&format!("{}\nversion = 2\n", crate::config::VERSION_MARKER)),
        "{config}"
    );
}

#[test]
fn shim_that_does_not_answer_fails_the_install() {
    let node = Node::new("config.toml", Some(&fixture("containerd-2.x.toml")));
    fs::write(&node.settings.shim_source, "#!/bin/sh\necho nope; exit 1\n").unwrap();
    let err = install(&node.settings).unwrap_err();
    assert!(matches!(err, Error::Check(_)), "{err}");
    assert!(
        err.to_string().contains("-v` on the host exited 1"),
        "{err}"
    );
}

#[test]
fn verify_command_must_show_the_runtime() {
    let mut node = Node::new("config.toml", Some(&fixture("containerd-2.x.toml")));
    node.settings.verify_command = "echo runtimes: runc".into();
    let err = install(&node.settings).unwrap_err();
    assert!(
        err.to_string().contains("without the runtime path"),
        "{err}"
    );
    node.settings.verify_command = format!("cat {}", node.settings.containerd_config.display());
    install(&node.settings).unwrap();
}

#[test]
fn failed_restart_is_reported_with_its_output() {
    let mut node = Node::new("config.toml", Some(&fixture("containerd-2.x.toml")));
    node.settings.restart_command = "echo 'Unit containerd.service not found.' >&2; exit 5".into();
    let err = install(&node.settings).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("exited 5") && msg.contains("containerd.service not found"),
        "{msg}"
    );
}

#[test]
fn containerd_that_does_not_come_back_is_an_error() {
    let mut node = Node::new("config.toml", Some(&fixture("containerd-2.x.toml")));
    node.settings.containerd_socket = Some(node.dir.path().join("nobody-listens.sock"));
    node.settings.timeout = Duration::from_millis(500);
    let err = install(&node.settings).unwrap_err();
    assert!(
        err.to_string().contains("does not accept connections"),
        "{err}"
    );
}
