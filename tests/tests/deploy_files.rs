//! The deploy files (deploy/: container file, compose file, systemd units, Kubernetes and KEDA
//! manifests, Grafana dashboard) pass their linters and schema validators (`scripts/lint-deploy`,
//! which installs them from PyPI on first use), and every one of those checks fails on a broken
//! file, so a pass means something.

use std::path::Path;
use std::process::{Command, Output};

use mediahost_e2e::repo_root;

/// The checks `scripts/lint-deploy` reports, by the start of their names.
const CHECKS: [&str; 8] = [
    "Containerfile",
    "YAML style",
    "compose.yaml",
    "Kubernetes manifests",
    "KEDA ScaledObject",
    "systemd units",
    "Grafana dashboard",
    "MEDIAHOST_* variables",
];

fn lint(deploy_dir: Option<&Path>) -> Output {
    let mut command = Command::new(repo_root().join("scripts/lint-deploy"));
    if let Some(dir) = deploy_dir {
        command.env("LINT_DEPLOY_DIR", dir);
    }
    command.output().expect("run scripts/lint-deploy")
}

#[test]
fn the_deploy_files_pass_their_linters() {
    let out = lint(None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/lint-deploy failed:\n{stderr}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for check in CHECKS {
        assert!(
            stderr.contains(&format!("ok: {check}")),
            "{check} was not checked:\n{stderr}"
        );
    }
}

/// Copies deploy/ and breaks every file in a way its check must notice.
#[test]
fn every_check_fails_on_a_broken_file() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("deploy");
    copy_dir(&repo_root().join("deploy"), &copy);
    let edit = |file: &str, from: &str, to: &str| {
        let path = copy.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} has no {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    };
    // hadolint: apt-get install without -y.
    edit("Containerfile", "apt-get install -y ", "apt-get install ");
    // yamllint: a key given twice.
    edit(
        "k8s/namespace.yaml",
        "  name: mediahost\n",
        "  name: mediahost\n  name: other\n",
    );
    // compose-spec: a service key that does not exist.
    edit(
        "compose.yaml",
        "    restart: unless-stopped\n",
        "    restarts: always\n",
    );
    // kubernetes-validate: a replica count that is not an integer.
    edit("k8s/api.yaml", "replicas: 2", "replicas: two");
    // KEDA: a stream the host does not write.
    edit(
        "k8s/keda.yaml",
        "stream: mediahost:queue:low",
        "stream: mediahost:queue:lowest",
    );
    // systemd: a misspelt directive.
    edit(
        "systemd/mediahost-worker.service",
        "NoNewPrivileges=yes",
        "NoNewPrivilege=yes",
    );
    // Grafana: a metric the host does not expose.
    edit(
        "grafana/mediahost.json",
        "mediahost_queue_depth",
        "mediahost_queue_length",
    );
    // A variable the host does not read.
    edit(
        "k8s/config.yaml",
        "MEDIAHOST_CONCURRENCY",
        "MEDIAHOST_WORKERS",
    );

    let out = lint(Some(&copy));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "broken files passed:\n{stderr}");
    for check in CHECKS {
        assert!(
            stderr.contains(&format!("FAILED: {check}")),
            "{check} did not notice its broken file:\n{stderr}"
        );
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
