//! The audit trail's cost on a bulk import (issue 12): the same import into
//! fresh databases with the trail off (the baseline, a bench-only switch),
//! with one change row per change, and as shipped (one JSON document per
//! bulk change set); then a re-import that changes one variable per host.
//! `benches/audit.sh` runs it on the three backends and prints the table in
//! BENCHMARKS.md.
//!
//! usage: audit_import URL INVENTORY MODE   (MODE: off | rows | auto)

use std::time::Instant;

use craton::import::{import_with, ImportOptions};
use craton::store::{self, apply, audit, DbUrl};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let [url, path, mode] = &args[..] else {
        eprintln!("usage: audit_import URL INVENTORY off|rows|auto");
        std::process::exit(2);
    };
    audit::bench_mode(mode);
    let url = DbUrl::parse(url).unwrap();
    let mut conn = store::connect(&url).unwrap();
    store::migrate(&mut conn).unwrap();
    let imported = import_with(path, &ImportOptions { run_scripts: false, ..Default::default() }).unwrap();
    let mut desired = imported.desired;
    let t = Instant::now();
    apply::apply(&mut conn, "default", &desired, false, &|_, _, _| {}).unwrap();
    let first = t.elapsed().as_secs_f64();
    for h in desired.hosts.values_mut() {
        h.vars.insert(
            "audit_bench".into(),
            craton::model::Var {
                value: craton::model::raw_from_string("1".into()).unwrap(),
                tier: craton::model::Tier::Inventory,
            },
        );
    }
    let t = Instant::now();
    apply::apply(&mut conn, "default", &desired, false, &|_, _, _| {}).unwrap();
    let second = t.elapsed().as_secs_f64();
    println!("{first:.2} {second:.2}");
}
