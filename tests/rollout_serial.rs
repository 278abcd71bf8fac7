//! A rolling run's batches are Ansible's `serial` batches: for each size
//! list, the batches `craton::rollout::plan` cuts equal the ones real
//! ansible-playbook forms for a play with that `serial` over the same
//! hosts in the same order (`ansible_play_batch`, printed once per batch).

mod common;

use std::process::Command;

use common::{ansible, ansible_env, ok};
use craton::rollout::{parse_sizes, plan};
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
