//! A rolling run's batches are Ansible's `serial` batches: for each size
//! list, the batches `craton::rollout::plan` cuts equal the ones real
//! ansible-playbook forms for a play with that `serial` over the same
//! hosts in the same order (`ansible_play_batch`, printed once per batch).

mod common;

use std::process::Command;

use common::{ansible, ansible_env, ok};
use craton::rollout::{limit_file, parse_sizes, plan};
use serde_json::{json, Value};

#[test]
fn batches_equal_ansibles_serial_batches() {
    let cases: Vec<(usize, Value)> = vec![
        (20, json!([1, "10%", "50%"])),
        (7, json!("30%")),
        (7, json!(3)),
        (5, json!(["40%", 1])),
        (9, json!(["1%", 4])),
        (3, json!(10)),
    ];
    let dir = tempfile::tempdir().unwrap();
    let python = ansible("python");
    let mut inv = format!("[all:vars]\nansible_connection=local\nansible_python_interpreter={}\n", python.display());
    let mut playbook = String::new();
    for (i, (n, sizes)) in cases.iter().enumerate() {
        inv.push_str(&format!("[case{i}]\n"));
        for h in 1..=*n {
            inv.push_str(&format!("c{i}h{h:02}\n"));
        }
        playbook.push_str(&format!(
            "- hosts: case{i}\n  gather_facts: false\n  serial: {sizes}\n  tasks:\n    - debug:\n        msg: \"CASE {i} BATCH {{{{ ansible_play_batch | join(',') }}}}\"\n      run_once: true\n"
        ));
    }
    std::fs::write(dir.path().join("inv.ini"), inv).unwrap();
    std::fs::write(dir.path().join("serial.yml"), playbook).unwrap();
    let mut cmd = Command::new(ansible("ansible-playbook"));
    ansible_env(&mut cmd, dir.path()).arg("-i").arg(dir.path().join("inv.ini")).arg(dir.path().join("serial.yml"));
    let out = ok(&mut cmd);
    for (i, (n, sizes)) in cases.iter().enumerate() {
        let tag = format!("\"msg\": \"CASE {i} BATCH ");
        let ansible_batches: Vec<Vec<String>> = out
            .lines()
            .filter_map(|l| l.trim().strip_prefix(&tag))
            .map(|rest| rest.trim_end_matches('"').split(',').map(str::to_string).collect())
            .collect();
        let hosts: Vec<String> = (1..=*n).map(|h| format!("c{i}h{h:02}")).collect();
        let ours = plan(&hosts, &parse_sizes(sizes).unwrap());
        assert_eq!(ours, ansible_batches, "case {i}: serial {sizes} over {n} hosts\n{out}");
    }
}

/// The hosts real Ansible targets with `--limit @FILE` of `text`.
fn limited(dir: &std::path::Path, text: &str) -> Vec<String> {
    let f = dir.join("batch.limit");
    std::fs::write(&f, text).unwrap();
    let mut cmd = Command::new(ansible("ansible"));
    ansible_env(&mut cmd, dir).args(["all", "--list-hosts", "-i"]).arg(dir.join("inv.yml"));
    cmd.arg(format!("--limit=@{}", f.display()));
    let out = ok(&mut cmd);
    let mut hosts: Vec<String> =
        out.lines().skip_while(|l| !l.contains("hosts (")).skip(1).map(|l| l.trim().to_string()).collect();
    hosts.sort();
    hosts
}

/// A batch's limit file makes Ansible target exactly the batch, whatever
/// pattern syntax its host names spell (a host that is also a group's name,
/// `*`, `:`, `,`, `~`), and refuses the names Ansible would widen it with.
#[test]
fn a_batch_limit_file_targets_exactly_its_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let plain = ["w1", "w2"];
    let tricky = ["web", "a*", "w?", "x:y", "p,q", "~w.*", "db"];
    let widening = ["!w1", "&w2"];
    let mut inv = String::from("all:\n  children:\n    web:\n      hosts:\n");
    for h in plain {
        inv.push_str(&format!("        {h}: {{}}\n"));
    }
    inv.push_str("    db:\n      hosts:\n");
    for h in tricky.iter().chain(&widening) {
        inv.push_str(&format!("        {}: {{}}\n", json!(h)));
    }
    std::fs::write(dir.path().join("inv.yml"), inv).unwrap();
    let batches: Vec<Vec<String>> = tricky
        .iter()
        .map(|h| vec![h.to_string()])
        .chain([tricky.iter().map(|h| h.to_string()).collect(), vec!["w1".into(), "~w.*".into(), "web".into()]])
        .collect();
    for batch in batches {
        let mut want = batch.clone();
        want.sort();
        assert_eq!(limited(dir.path(), &limit_file(&batch).unwrap()), want, "batch {batch:?}");
    }
    for h in widening {
        let e = limit_file(&["w1".to_string(), h.to_string()]).unwrap_err();
        assert!(e.contains(&format!("{h:?}")), "{e}");
        // What the refusal prevents: Ansible reads the line as a pattern.
        assert_ne!(limited(dir.path(), &format!("{h}\n")), vec![h.to_string()], "{h}");
    }
}
