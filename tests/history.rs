//! The inventory as of a past time (issue 12, stage 2) rests on one
//! property: the audit's flat view of a project holds everything rendering
//! reads, so view -> snapshot renders byte for byte as the snapshot did.
//! Checked here on real imports (OpenStack-Ansible's generated inventory,
//! kolla-ansible's multinode with group_vars, the precedence fixture,
//! kubespray's sample when the shared test data is there), on every
//! backend, for `--list` (plain, resolved, pretty), every `--host`, a
//! `--group` subtree and both bundle formats. The store-level rebuild
//! (undo, refusals) is tested through the API in daemon/tests/history.rs.

mod common;

use std::path::PathBuf;

use common::{backends, cratond, ok, repo_root, TestDb};
use craton::bundle::{self, Format};
use craton::model::Snapshot;
use craton::render::{self, Options, Selection};
use craton::store::audit;
use craton::store::history;

fn renders(snap: &Snapshot) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let sel = Selection { include_inactive: true, ..Selection::default() };
    for (name, opts) in [
        ("list", Options::default()),
        ("resolved", Options { resolved: true, ..Options::default() }),
        ("pretty", Options { pretty: true, ..Options::default() }),
    ] {
        let e = render::emit(snap, &sel, opts).unwrap();
        let mut b = Vec::new();
        render::write_list(&e, opts, &mut b).unwrap();
        out.push((name.to_string(), b));
        if name == "list" {
            for h in &snap.hosts {
                let mut b = Vec::new();
                render::write_host(&e, &h.name, opts, &mut b).unwrap();
                out.push((format!("host {}", h.name), b));
            }
        }
    }
    if let Some(g) = snap.groups.iter().find(|g| !g.children.is_empty()) {
        let sel = Selection { group: Some(g.name.clone()), ..Selection::default() };
        let e = render::emit(snap, &sel, Options::default()).unwrap();
        let mut b = Vec::new();
        render::write_list(&e, Options::default(), &mut b).unwrap();
        out.push((format!("group {}", g.name), b));
    }
    for f in [Format::Tgz, Format::Zip] {
        if let Ok(b) = bundle::build(snap, &Selection::default(), f) {
            out.push((format!("bundle {f:?}"), b.bytes.to_vec()));
        }
    }
    out
}

fn inputs() -> Vec<PathBuf> {
    let data = repo_root().join("tests/data");
    let mut v = vec![
        data.join("openstack_inventory.json"),
        data.join("realworld/kolla-ansible-multinode"),
        data.join("precedence.json"),
    ];
    let kubespray = PathBuf::from("/work/shared/testdata/realworld/kubespray-sample");
    if kubespray.exists() {
        v.push(kubespray);
    }
    v
}

#[test]
fn view_of_real_imports_renders_the_same_bytes() {
    for b in backends() {
        let db = TestDb::new(b);
        let _ = db.conn();
        for (i, input) in inputs().into_iter().enumerate() {
            let project = format!("p{i}");
            ok(cratond(&db).args(["import", "ansible"]).arg(&input).args(["--project", &project]));
            let mut c = db.conn();
            let snap = craton::store::load::load_snapshot(&mut c, &project).unwrap();
            assert!(!snap.hosts.is_empty(), "{b:?} {input:?}: nothing imported");
            let rebuilt = history::snapshot_from_view(&audit::view_of(&snap), snap.project.clone()).unwrap();
            let (want, got) = (renders(&snap), renders(&rebuilt));
            assert_eq!(want.len(), got.len(), "{b:?} {input:?}");
            for ((what, w), (_, g)) in want.iter().zip(&got) {
                assert!(w == g, "{b:?} {input:?} {what}: rebuilt renders differently");
            }
            // The rebuilt snapshot's view is the view: nothing was lost.
            assert_eq!(audit::view_of(&rebuilt), audit::view_of(&snap), "{b:?} {input:?}");
        }
    }
}
