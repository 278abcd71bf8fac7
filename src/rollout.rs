//! Rolling deployments (issue 10), the pure part: what a run's `batch`,
//! `max_fail_percentage`, `pause_s` and `order` mean, how a target's hosts
//! are cut into batches, and when a batch's failures stop the rollout.
//!
//! The sizes follow Ansible's `serial` exactly (a count, `"N%"` of all the
//! target's hosts rounded down but at least 1, or a list whose last entry
//! repeats), and so does the stop rule: a batch whose failed and
//! unreachable hosts are more than `max_fail_percentage` of it stops the
//! rollout; without one, only a batch where every host failed does. Unlike
//! `serial` inside one play, each batch is its own `ansible-playbook`
//! over the run's recorded bundle, so a stopped rollout resumes at the
//! batch where it stopped. The daemon owns the processes and the clock.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most entries of a `batch` list.
pub const MAX_SIZES: usize = 100;
/// Longest `pause_s` (a day).
pub const MAX_PAUSE_S: u64 = 86_400;

/// One entry of `batch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSize {
    Count(u32),
    /// 1..=100 percent of all the target's hosts.
    Percent(u32),
}

impl Serialize for BatchSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            BatchSize::Count(n) => s.serialize_u32(*n),
            BatchSize::Percent(p) => s.serialize_str(&format!("{p}%")),
        }
    }
}

impl<'de> Deserialize<'de> for BatchSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        parse_size(&v).map_err(serde::de::Error::custom)
    }
}

/// A `batch` entry: a positive integer or `"N%"` (1 to 100).
pub fn parse_size(v: &Value) -> Result<BatchSize, String> {
    const WANT: &str = "must be a positive integer or a percentage such as \"25%\"";
    match v {
        Value::Number(n) => match n.as_u64() {
            Some(c) if (1..=u64::from(u32::MAX)).contains(&c) => Ok(BatchSize::Count(c as u32)),
            _ => Err(WANT.into()),
        },
        Value::String(s) => {
            let digits = s.strip_suffix('%');
            match digits.map(|d| d.trim().parse::<u32>()) {
                Some(Ok(p)) if (1..=100).contains(&p) => Ok(BatchSize::Percent(p)),
                Some(_) => Err("a percentage must be from 1% to 100%".into()),
                None => match s.trim().parse::<u32>() {
                    Ok(c) if c > 0 => Ok(BatchSize::Count(c)),
                    _ => Err(WANT.into()),
                },
            }
        }
        _ => Err(WANT.into()),
    }
}

/// `batch`: one size or a list of them (as `serial`).
pub fn parse_sizes(v: &Value) -> Result<Vec<BatchSize>, (Option<usize>, String)> {
    match v {
        Value::Array(items) => {
            if items.is_empty() {
                return Err((None, "must not be an empty list".into()));
            }
            if items.len() > MAX_SIZES {
                return Err((None, format!("has more than {MAX_SIZES} entries")));
            }
            items.iter().enumerate().map(|(i, x)| parse_size(x).map_err(|m| (Some(i), m))).collect()
        }
        other => parse_size(other).map(|s| vec![s]).map_err(|m| (None, m)),
    }
}

/// The order of the target's hosts that batches are cut from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// The target's group order: each group's hosts in turn, its children
    /// after it, depth first (cells one after the other).
    #[default]
    Inventory,
    /// By host name.
    Sorted,
    /// The inventory order backwards.
    Reverse,
    /// A random order, drawn at submit and stored with the run.
    Shuffle,
}

impl Order {
    pub fn parse(s: &str) -> Option<Order> {
        match s {
            "inventory" => Some(Order::Inventory),
            "sorted" => Some(Order::Sorted),
            "reverse" => Some(Order::Reverse),
            "shuffle" => Some(Order::Shuffle),
            _ => None,
        }
    }
}

/// The hosts of `s` (an emitted structure) in the target's group order:
/// depth first from `target` (or from every top-level group), each group's
/// own members in their stored order before its children's, each host
/// where it first appears; hosts in no group last.
pub fn inventory_order(s: &crate::model::Snapshot, target: Option<&str>) -> Vec<String> {
    let mut seen_host = vec![false; s.hosts.len()];
    let mut seen_group = vec![false; s.groups.len()];
    let mut out = Vec::with_capacity(s.hosts.len());
    let mut stack: Vec<usize> = match target.and_then(|t| s.group_index(t)) {
        Some(g) => vec![g],
        None => (0..s.groups.len()).rev().filter(|&g| s.groups[g].parents.is_empty()).collect(),
    };
    while let Some(g) = stack.pop() {
        if std::mem::replace(&mut seen_group[g], true) {
            continue;
        }
        for &h in &s.groups[g].hosts {
            if !std::mem::replace(&mut seen_host[h], true) {
                out.push(s.hosts[h].name.clone());
            }
        }
        stack.extend(s.groups[g].children.iter().rev());
    }
    for (h, host) in s.hosts.iter().enumerate() {
        if !seen_host[h] {
            out.push(host.name.clone());
        }
    }
    out
}

/// Ansible's `pct_to_int`: a percentage of `total`, rounded down, at least 1.
fn size_of(s: BatchSize, total: usize) -> usize {
    match s {
        BatchSize::Count(n) => n as usize,
        BatchSize::Percent(p) => (total * p as usize / 100).max(1),
    }
}

/// Puts `hosts` (in inventory order) in `order`; `seed` draws the shuffle.
pub fn ordered(mut hosts: Vec<String>, order: Order, seed: u64) -> Vec<String> {
    match order {
        Order::Inventory => {}
        Order::Sorted => hosts.sort(),
        Order::Reverse => hosts.reverse(),
        Order::Shuffle => {
            // Fisher-Yates over splitmix64: no dependency for a stored draw.
            let mut x = seed;
            let mut next = move || {
                x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = x;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^ (z >> 31)
            };
            for i in (1..hosts.len()).rev() {
                let j = (next() % (i as u64 + 1)) as usize;
                hosts.swap(i, j);
            }
        }
    }
    hosts
}

/// Cuts `hosts` into batches of `sizes` (the last size repeats), as
/// Ansible's `_get_serialized_batches`.
pub fn plan(hosts: &[String], sizes: &[BatchSize]) -> Vec<Vec<String>> {
    let total = hosts.len();
    let mut out = Vec::new();
    let mut rest = hosts;
    let mut i = 0;
    while !rest.is_empty() {
        let sizes_i = sizes.get(i.min(sizes.len().saturating_sub(1)));
        let n = sizes_i.map_or(rest.len(), |s| size_of(*s, total)).clamp(1, rest.len());
        let (now, later) = rest.split_at(n);
        out.push(now.to_vec());
        rest = later;
        i += 1;
    }
    out
}

/// The text of a batch's `--limit @FILE`: one host name a line. Ansible
/// reads each line as a pattern, but takes one that is exactly a host's
/// name as that host, before any pattern syntax (so `web`, a host that is
/// also a group, or `a*`, `x:y`, `p,q`, `~w.*` stay one host); only a
/// leading `!` or `&` still counts, and would widen the batch to every
/// host, so such names are refused (the error names the host).
pub fn limit_file(hosts: &[String]) -> Result<String, String> {
    if let Some(h) = hosts.iter().find(|h| h.starts_with(['!', '&'])) {
        return Err(format!(
            "host {h:?} starts with {:?}, which an Ansible limit reads as an exclusion or intersection: \
             a rolling run cannot target it exactly (rename it, or run without batch)",
            &h[..1]
        ));
    }
    let mut text = hosts.join("\n");
    text.push('\n');
    Ok(text)
}

/// Whether a finished batch of `size` hosts, `failed` of them failed or
/// unreachable, stops the rollout; the reason when it does.
pub fn stops(size: usize, failed: usize, max_fail_percentage: Option<f64>) -> Option<String> {
    if size == 0 || failed == 0 {
        return None;
    }
    let pct = failed as f64 * 100.0 / size as f64;
    match max_fail_percentage {
        Some(max) if pct > max => Some(format!(
            "{failed} of {size} hosts failed ({}% > max_fail_percentage {max}%)",
            (pct * 10.0).round() / 10.0
        )),
        Some(_) => None,
        None if failed >= size => Some(format!("all {size} hosts of the batch failed")),
        None => None,
    }
}

/// A batch's place in a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BatchStatus {
    Pending,
    Running,
    /// Its ansible-playbook ran to its end (host failures included: they
    /// are the hosts' statuses, and the stop rule's business).
    Done,
    /// Not run: the rollout stopped before it. A resume runs it.
    Skipped,
    /// Stopped while it ran (cancel, timeout, an error of the run).
    Stopped,
}

impl BatchStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BatchStatus::Pending => "pending",
            BatchStatus::Running => "running",
            BatchStatus::Done => "done",
            BatchStatus::Skipped => "skipped",
            BatchStatus::Stopped => "stopped",
        }
    }

    pub fn parse(s: &str) -> Option<BatchStatus> {
        [BatchStatus::Pending, BatchStatus::Running, BatchStatus::Done, BatchStatus::Skipped, BatchStatus::Stopped]
            .into_iter()
            .find(|b| b.as_str() == s)
    }

    /// Whether a resume runs a batch in this status again.
    pub fn resumable(self) -> bool {
        !matches!(self, BatchStatus::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("h{i:02}")).collect()
    }

    fn sizes_of(p: &[Vec<String>]) -> Vec<usize> {
        p.iter().map(Vec::len).collect()
    }

    #[test]
    fn a_limit_file_is_one_name_a_line_and_refuses_what_ansible_would_widen() {
        let hosts = vec!["web".to_string(), "a*".into(), "x:y".into()];
        assert_eq!(limit_file(&hosts).unwrap(), "web\na*\nx:y\n");
        for bad in ["!w1", "&q"] {
            let e = limit_file(&[String::from("ok"), bad.into()]).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn sizes_parse_like_serial_and_name_the_bad_entry() {
        assert_eq!(parse_sizes(&json!(2)).unwrap(), vec![BatchSize::Count(2)]);
        assert_eq!(
            parse_sizes(&json!([1, "10%", "50%"])).unwrap(),
            vec![BatchSize::Count(1), BatchSize::Percent(10), BatchSize::Percent(50)]
        );
        assert_eq!(parse_sizes(&json!("3")).unwrap(), vec![BatchSize::Count(3)]);
        assert_eq!(parse_sizes(&json!([1, 0])).unwrap_err().0, Some(1));
        assert_eq!(parse_sizes(&json!(["101%"])).unwrap_err().0, Some(0));
        assert!(parse_sizes(&json!([])).is_err());
        assert!(parse_sizes(&json!(true)).is_err());
        let back: Vec<BatchSize> = serde_json::from_value(json!([1, "10%"])).unwrap();
        assert_eq!(serde_json::to_value(back).unwrap(), json!([1, "10%"]));
    }

    #[test]
    fn batches_are_ansibles_serialized_batches() {
        // Ansible: serial [1, "10%", "50%"] over 20 hosts: 1, 2, 10, 7.
        let p = plan(&names(20), &[BatchSize::Count(1), BatchSize::Percent(10), BatchSize::Percent(50)]);
        assert_eq!(sizes_of(&p), vec![1, 2, 10, 7]);
        assert_eq!(p.concat(), names(20), "every host once, in order");
        // "30%" of 5 is 1 (rounded down, at least 1); the last size repeats.
        assert_eq!(sizes_of(&plan(&names(5), &[BatchSize::Percent(30)])), vec![1, 1, 1, 1, 1]);
        assert_eq!(sizes_of(&plan(&names(5), &[BatchSize::Count(2)])), vec![2, 2, 1]);
        assert_eq!(sizes_of(&plan(&names(3), &[BatchSize::Count(10)])), vec![3]);
        assert!(plan(&[], &[BatchSize::Count(1)]).is_empty());
    }

    #[test]
    fn orders_keep_every_host_once() {
        let hs = names(9);
        assert_eq!(ordered(hs.clone(), Order::Inventory, 0), hs);
        let mut rev = hs.clone();
        rev.reverse();
        assert_eq!(ordered(hs.clone(), Order::Reverse, 0), rev);
        assert_eq!(ordered(rev, Order::Sorted, 0), hs);
        let a = ordered(hs.clone(), Order::Shuffle, 7);
        assert_eq!(a, ordered(hs.clone(), Order::Shuffle, 7), "the seed decides");
        assert_ne!(a, hs);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, hs);
    }

    #[test]
    fn the_stop_rule_is_ansibles() {
        // Ansible stops when failed / batch > max (strictly).
        assert!(stops(4, 1, Some(25.0)).is_none());
        assert!(stops(4, 2, Some(25.0)).unwrap().contains("2 of 4 hosts failed (50% > max_fail_percentage 25%)"));
        assert!(stops(3, 1, Some(0.0)).is_some());
        // Without a threshold only a wholly failed batch stops it.
        assert!(stops(3, 2, None).is_none());
        assert!(stops(3, 3, None).unwrap().contains("all 3 hosts"));
        assert!(stops(3, 0, Some(0.0)).is_none());
    }
}
