//! Typed JSON envelopes for the values Ansible's YAML loader gives that JSON
//! cannot carry: `datetime`/`date` timestamps (`2017-03-07T10:20:49Z`) and
//! mappings with non-string keys (`1: [foo]`). Craton stores variables as
//! JSON, so without them an int key would become `"1"` and a timestamp a
//! `str`, and templates (`type_debug`, arithmetic on keys, date filters)
//! would see other types than with the original inventory.
//!
//! Like Ansible's own `{"__ansible_unsafe": ...}` and
//! `{"__ansible_vault": ...}`, an envelope is a one-key object:
//!
//! * `{"__craton_timestamp": TEXT}`: a YAML timestamp, `TEXT` as written in
//!   the source (any form PyYAML's timestamp constructor takes);
//! * `{"__craton_map": [[KEY, VALUE], ...]}`: a mapping in source order,
//!   each `KEY` a JSON scalar (`1`, `1.5`, `true`, `null` or a string). Used
//!   only for mappings with at least one non-string key, or a string key
//!   starting with `__craton_` (so such a plain mapping can never be taken
//!   for an envelope).
//!
//! Script output (`--list`/`--host`) cannot show these types either, so
//! [`to_plain`] turns envelopes into exactly what `ansible-inventory --list`
//! prints for the original; bundles write them in YAML ([`write_yaml`]) so
//! Ansible builds the real types again. Writers of the REST API are held to
//! [`check`], so a stored envelope is always one of these two shapes.

use serde_json::value::RawValue;
use serde_json::{Map, Value};

pub const TIMESTAMP: &str = "__craton_timestamp";
pub const MAP: &str = "__craton_map";
/// Every key of this prefix is reserved for envelopes.
const PREFIX: &str = "__craton_";
/// Raw JSON holding an envelope contains this text; cheap to test for on
/// every value before parsing any.
const MARKER: &str = "\"__craton_";

/// `{"__craton_timestamp": text}`.
pub fn timestamp(text: &str) -> Value {
    Value::Object(Map::from_iter([(TIMESTAMP.to_string(), Value::String(text.to_string()))]))
}

/// A mapping from (JSON scalar key, value) pairs: a plain object when every
/// key is an ordinary string, else a `__craton_map` envelope. The caller
/// has refused keys that collide (in Python or as JSON text).
pub fn mapping(pairs: Vec<(Value, Value)>) -> Value {
    let plain = pairs.iter().all(|(k, _)| matches!(k, Value::String(s) if !s.starts_with(PREFIX)));
    if plain {
        let obj = pairs
            .into_iter()
            .map(|(k, v)| match k {
                Value::String(s) => (s, v),
                _ => unreachable!("checked above"),
            })
            .collect();
        return Value::Object(obj);
    }
    let items = pairs.into_iter().map(|(k, v)| Value::Array(vec![k, v])).collect();
    Value::Object(Map::from_iter([(MAP.to_string(), Value::Array(items))]))
}

/// Whether the JSON text may hold an envelope (false means it surely does not).
pub fn may_hold(raw: &str) -> bool {
    raw.contains(MARKER)
}

/// Whether the JSON text holds an envelope anywhere (parsed only when
/// [`may_hold`] says it might: a string can contain the marker too).
pub fn holds_envelope(raw: &str) -> bool {
    fn any(v: &Value) -> bool {
        match v {
            Value::Array(items) => items.iter().any(any),
            Value::Object(obj) => matches!(envelope(obj), Ok(Some(_))) || obj.values().any(any),
            _ => false,
        }
    }
    may_hold(raw) && serde_json::from_str::<Value>(raw).is_ok_and(|v| any(&v))
}

/// The two envelope shapes, borrowed from a value.
enum Envelope<'a> {
    Timestamp(&'a str),
    Map(&'a [Value]),
}

/// `Some` for a well-formed envelope, `Err` for an object that uses the
/// reserved prefix any other way.
fn envelope(obj: &Map<String, Value>) -> Result<Option<Envelope<'_>>, String> {
    if !obj.keys().any(|k| k.starts_with(PREFIX)) {
        return Ok(None);
    }
    let mut keys = obj.keys();
    let (Some(key), None) = (keys.next(), keys.next()) else {
        return Err(format!(
            "an object with a key starting with {PREFIX:?} must be an envelope with that one key \
             ({TIMESTAMP:?} or {MAP:?})"
        ));
    };
    match (key.as_str(), &obj[key]) {
        (TIMESTAMP, Value::String(s)) => Ok(Some(Envelope::Timestamp(s))),
        (TIMESTAMP, _) => Err(format!("{TIMESTAMP:?} must be a string (a YAML timestamp)")),
        (MAP, Value::Array(items)) => Ok(Some(Envelope::Map(items))),
        (MAP, _) => Err(format!("{MAP:?} must be an array of [key, value] pairs")),
        (other, _) => Err(format!("unknown envelope {other:?} (known: {TIMESTAMP:?}, {MAP:?})")),
    }
}

/// The key and value of one `__craton_map` item.
fn pair(item: &Value) -> Result<(&Value, &Value), String> {
    match item {
        Value::Array(kv) if kv.len() == 2 => Ok((&kv[0], &kv[1])),
        _ => Err(format!("each item of {MAP:?} must be a [key, value] pair")),
    }
}

/// The object key `json.dumps` (Ansible's encoder) writes for a map key.
fn plain_key(k: &Value) -> Result<String, String> {
    Ok(match k {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.to_string(),
            (_, Some(u)) => u.to_string(),
            _ => py_float_repr(n.as_f64().unwrap_or(f64::NAN)),
        },
        _ => return Err(format!("a {MAP:?} key must be a string, number, boolean or null")),
    })
}

/// A map key as Python's dict compares it: `True == 1 == 1.0`.
#[derive(PartialEq)]
enum PyKey<'a> {
    None,
    Int(i128),
    Float(u64),
    Str(&'a str),
}

fn py_key(k: &Value) -> PyKey<'_> {
    match k {
        Value::Null => PyKey::None,
        Value::Bool(b) => PyKey::Int(*b as i128),
        Value::String(s) => PyKey::Str(s),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => PyKey::Int(i as i128),
            (_, Some(u), _) => PyKey::Int(u as i128),
            (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 1e38 => PyKey::Int(f as i128),
            (_, _, f) => PyKey::Float(f.unwrap_or(f64::NAN).to_bits()),
        },
        _ => PyKey::Str(""),
    }
}

/// Why `v` cannot be stored, naming where in it (`""` is the value itself,
/// else a path like `.a[0]`): a malformed envelope, a timestamp PyYAML would
/// not take, or map keys that are one key in Python (`1`, `1.0`, `true`).
pub fn check(v: &Value) -> Result<(), String> {
    let mut path = String::new();
    check_at(v, &mut path).map_err(|m| if path.is_empty() { m } else { format!("at {path}: {m}") })
}

fn check_at(v: &Value, path: &mut String) -> Result<(), String> {
    match v {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                check_at(item, path)?;
                path.truncate(len);
            }
        }
        Value::Object(obj) => match envelope(obj)? {
            None => {
                for (k, item) in obj {
                    let len = path.len();
                    path.push_str(&format!(".{k}"));
                    check_at(item, path)?;
                    path.truncate(len);
                }
            }
            Some(Envelope::Timestamp(text)) => {
                timestamp_iso(text).map_err(|e| format!("{TIMESTAMP:?} {text:?}: {e}"))?;
            }
            Some(Envelope::Map(items)) => {
                let mut seen: Vec<(PyKey, String)> = Vec::with_capacity(items.len());
                for item in items {
                    let (k, val) = pair(item)?;
                    let text = plain_key(k)?;
                    // Keys equal in Python would make one key in Ansible. Keys that
                    // are only equal as JSON text (`1`, `"1"`) are two keys there;
                    // script output keeps the last, as json.dumps' reader does.
                    if let Some((_, first)) = seen.iter().find(|(pk, _)| *pk == py_key(k)) {
                        return Err(format!("{MAP:?} keys {first:?} and {text:?} are the same key in Ansible"));
                    }
                    let len = path.len();
                    path.push_str(&format!(".{text}"));
                    check_at(val, path)?;
                    path.truncate(len);
                    seen.push((py_key(k), text));
                }
            }
        },
        _ => {}
    }
    Ok(())
}

/// The value as `ansible-inventory --list` prints the original: map keys as
/// JSON object keys, timestamps in `isoformat()`. Malformed envelopes
/// (refused on every write path) are left as they are.
pub fn to_plain(v: &Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(items.iter().map(to_plain).collect()),
        Value::Object(obj) => match envelope(obj) {
            Ok(Some(Envelope::Timestamp(text))) => match timestamp_iso(text) {
                Ok(iso) => Value::String(iso),
                Err(_) => v.clone(),
            },
            Ok(Some(Envelope::Map(items))) => {
                let mut out = Map::with_capacity(items.len());
                for item in items {
                    let Ok((k, val)) = pair(item) else { return v.clone() };
                    let Ok(key) = plain_key(k) else { return v.clone() };
                    out.insert(key, to_plain(val));
                }
                Value::Object(out)
            }
            _ => Value::Object(obj.iter().map(|(k, val)| (k.clone(), to_plain(val))).collect()),
        },
        _ => v.clone(),
    }
}

/// [`to_plain`] of raw JSON; `None` when it holds no envelope (most values,
/// which are then used as they are).
pub fn plain_raw(raw: &RawValue) -> Option<Box<RawValue>> {
    if !may_hold(raw.get()) {
        return None;
    }
    let v: Value = serde_json::from_str(raw.get()).ok()?;
    let plain = to_plain(&v);
    (plain != v).then(|| crate::model::raw_from_value(&plain))
}

/// Writes `v` as a YAML 1.1 flow node that Ansible's YAML loader turns into
/// the typed value: envelopes as an int/float/bool/null key or a plain
/// timestamp, `{"__ansible_unsafe": s}` as `!unsafe "s"`,
/// `{"__ansible_vault": s}` as `!vault "s"` (in YAML those objects would be
/// plain dicts; only the JSON decoder reads them), strings double-quoted so
/// none is resolved to another type.
pub fn write_yaml(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => yaml_number(n, out),
        Value::String(s) => yaml_str(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                write_yaml(item, out);
            }
            out.push(b']');
        }
        Value::Object(obj) => {
            if obj.len() == 1 {
                let (k, inner) = obj.iter().next().expect("one entry");
                let tag: Option<&[u8]> = match k.as_str() {
                    "__ansible_unsafe" => Some(b"!unsafe "),
                    "__ansible_vault" => Some(b"!vault "),
                    _ => None,
                };
                if let (Some(tag), Value::String(s)) = (tag, inner) {
                    out.extend_from_slice(tag);
                    yaml_str(s, out);
                    return;
                }
            }
            match envelope(obj) {
                Ok(Some(Envelope::Timestamp(text))) if timestamp_iso(text).is_ok() => {
                    // isoformat() text always matches PyYAML's implicit
                    // timestamp resolver, and builds the same value again.
                    out.extend_from_slice(timestamp_iso(text).expect("checked").as_bytes());
                }
                Ok(Some(Envelope::Map(items))) if items.iter().all(|i| pair(i).is_ok()) => {
                    out.push(b'{');
                    for (i, item) in items.iter().enumerate() {
                        let (k, val) = pair(item).expect("checked");
                        if i > 0 {
                            out.extend_from_slice(b", ");
                        }
                        write_yaml(k, out);
                        out.extend_from_slice(b": ");
                        write_yaml(val, out);
                    }
                    out.push(b'}');
                }
                _ => {
                    out.push(b'{');
                    for (i, (k, val)) in obj.iter().enumerate() {
                        if i > 0 {
                            out.extend_from_slice(b", ");
                        }
                        yaml_str(k, out);
                        out.extend_from_slice(b": ");
                        write_yaml(val, out);
                    }
                    out.push(b'}');
                }
            }
        }
    }
}

/// A number as YAML 1.1 resolves it to the same int or float: a float needs
/// a `.` in its mantissa and a signed exponent (`1.0e+20`, not `1e20`,
/// which PyYAML reads as a string).
fn yaml_number(n: &serde_json::Number, out: &mut Vec<u8>) {
    if n.is_i64() || n.is_u64() {
        out.extend_from_slice(n.to_string().as_bytes());
        return;
    }
    let r = py_float_repr(n.as_f64().unwrap_or(0.0));
    match r.split_once('e') {
        Some((m, e)) if !m.contains('.') => out.extend_from_slice(format!("{m}.0e{e}").as_bytes()),
        _ => out.extend_from_slice(r.as_bytes()),
    }
}

/// A YAML double-quoted scalar. PyYAML refuses characters outside YAML's
/// printable set anywhere in a stream, and folds line breaks (including
/// NEL, LS, PS) inside quotes, so all of those are escaped.
pub fn yaml_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let mut buf = [0u8; 4];
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\t' => out.extend_from_slice(b"\\t"),
            ' '..='~' => out.push(c as u8),
            '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fefe}' | '\u{ff00}'..='\u{fffd}' | '\u{10000}'..='\u{10ffff}'
                if !matches!(c, '\u{2028}' | '\u{2029}') =>
            {
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes())
            }
            _ if (c as u32) <= 0xffff => out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes()),
            _ => out.extend_from_slice(format!("\\U{:08x}", c as u32).as_bytes()),
        }
    }
    out.push(b'"');
}

// ---------------------------------------------------------------------------
// PyYAML's timestamps and Python's float repr, shared by the YAML importer
// (which needs them with or without the `import` feature built) and the
// renderers here.

/// The groups of PyYAML's `timestamp_regexp` (the constructor's, which also
/// takes one-digit months and days without a time).
pub(crate) struct TsParts<'a> {
    year: &'a str,
    pub(crate) month: &'a str,
    pub(crate) day: &'a str,
    pub(crate) hour: Option<&'a str>,
    minute: &'a str,
    second: &'a str,
    fraction: &'a str,
    /// `Z`, or (sign, hours, minutes).
    tz: Option<Option<(u8, &'a str, &'a str)>>,
}

pub(crate) fn parse_timestamp(m: &str) -> Option<TsParts<'_>> {
    let b = m.as_bytes();
    let digits = |i: usize, min: usize, max: usize| -> Option<usize> {
        let mut j = i;
        while j < b.len() && j - i < max && b[j].is_ascii_digit() {
            j += 1;
        }
        (j - i >= min).then_some(j)
    };
    let y_end = digits(0, 4, 4)?;
    (b.get(y_end) == Some(&b'-')).then_some(())?;
    let mo_end = digits(y_end + 1, 1, 2)?;
    (b.get(mo_end) == Some(&b'-')).then_some(())?;
    let d_end = digits(mo_end + 1, 1, 2)?;
    let mut ts = TsParts {
        year: &m[..y_end],
        month: &m[y_end + 1..mo_end],
        day: &m[mo_end + 1..d_end],
        hour: None,
        minute: "",
        second: "",
        fraction: "",
        tz: None,
    };
    if d_end == b.len() {
        return Some(ts);
    }
    let mut i = d_end;
    if matches!(b[i], b'T' | b't') {
        i += 1;
    } else {
        let j = skip_while(b, i, |c| c == b' ' || c == b'\t');
        if j == i {
            return None;
        }
        i = j;
    }
    let h_end = digits(i, 1, 2)?;
    (b.get(h_end) == Some(&b':')).then_some(())?;
    let mi_end = digits(h_end + 1, 2, 2)?;
    (b.get(mi_end) == Some(&b':')).then_some(())?;
    let s_end = digits(mi_end + 1, 2, 2)?;
    ts.hour = Some(&m[i..h_end]);
    ts.minute = &m[h_end + 1..mi_end];
    ts.second = &m[mi_end + 1..s_end];
    i = s_end;
    if b.get(i) == Some(&b'.') {
        let f_end = skip_while(b, i + 1, |c| c.is_ascii_digit());
        ts.fraction = &m[i + 1..f_end];
        i = f_end;
    }
    if i == b.len() {
        return Some(ts);
    }
    i = skip_while(b, i, |c| c == b' ' || c == b'\t');
    match b.get(i) {
        Some(b'Z') if i + 1 == b.len() => {
            ts.tz = Some(None);
            Some(ts)
        }
        Some(&sign @ (b'+' | b'-')) => {
            let th_end = digits(i + 1, 1, 2)?;
            let mut tm = "";
            let mut end = th_end;
            if b.get(th_end) == Some(&b':') {
                end = digits(th_end + 1, 2, 2)?;
                tm = &m[th_end + 1..end];
            }
            (end == b.len()).then_some(())?;
            ts.tz = Some(Some((sign, &m[i + 1..th_end], tm)));
            Some(ts)
        }
        _ => None,
    }
}

/// `construct_yaml_timestamp` followed by `isoformat()`, with the range
/// checks `datetime` makes.
pub fn timestamp_iso(value: &str) -> Result<String, String> {
    let m = value.strip_suffix('\n').unwrap_or(value);
    let ts = parse_timestamp(m).ok_or_else(|| format!("{value:?} is not a timestamp"))?;
    let num = |s: &str| s.parse::<u32>().unwrap_or(0);
    let (year, month, day) = (num(ts.year), num(ts.month), num(ts.day));
    if year < 1 {
        return Err(format!("year {year} is out of range"));
    }
    if !(1..=12).contains(&month) {
        return Err("month must be in 1..12".to_string());
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let dim = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1..=dim).contains(&day) {
        return Err("day is out of range for month".to_string());
    }
    let date = format!("{year:04}-{month:02}-{day:02}");
    let Some(hour) = ts.hour else {
        return Ok(date);
    };
    let (hour, minute, second) = (num(hour), num(ts.minute), num(ts.second));
    if hour > 23 {
        return Err("hour must be in 0..23".to_string());
    }
    if minute > 59 {
        return Err("minute must be in 0..59".to_string());
    }
    if second > 59 {
        return Err("second must be in 0..59".to_string());
    }
    let mut out = format!("{date}T{hour:02}:{minute:02}:{second:02}");
    let mut frac: String = ts.fraction.chars().take(6).collect();
    while frac.len() < 6 {
        frac.push('0');
    }
    if num(&frac) != 0 {
        out.push('.');
        out.push_str(&frac);
    }
    match ts.tz {
        None => {}
        Some(None) => out.push_str("+00:00"),
        Some(Some((sign, h, mi))) => {
            let total = num(h) * 60 + num(mi);
            if total >= 24 * 60 {
                return Err(format!(
                    "offset must be a timedelta strictly between -timedelta(hours=24) and timedelta(hours=24) ({}{h}:{mi})",
                    sign as char
                ));
            }
            let s = if sign == b'-' && total != 0 { '-' } else { '+' };
            out.push_str(&format!("{s}{:02}:{:02}", total / 60, total % 60));
        }
    }
    Ok(out)
}

/// Python's `repr(float)`: shortest round-trip digits, scientific notation
/// outside 1e-4 <= |x| < 1e16.
pub fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let decpt = exp + 1;
    let sign = if f < 0.0 { "-" } else { "" };
    let body = if -4 < decpt && decpt <= 16 {
        let n = digits.len() as i32;
        if decpt <= 0 {
            format!("0.{}{}", "0".repeat((-decpt) as usize), digits)
        } else if decpt >= n {
            format!("{}{}.0", digits, "0".repeat((decpt - n) as usize))
        } else {
            format!("{}.{}", &digits[..decpt as usize], &digits[decpt as usize..])
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{first}{frac}e{esign}{:02}", exp.abs())
    };
    format!("{sign}{body}")
}

fn skip_while(b: &[u8], mut i: usize, f: impl Fn(u8) -> bool) -> usize {
    while i < b.len() && f(b[i]) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn yaml(v: Value) -> String {
        let mut out = Vec::new();
        write_yaml(&v, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn plain_form_is_what_list_prints() {
        let v = json!({"a": {"__craton_map": [[1, ["foo"]], [false, "b"], [null, "n"], [1.5, "f"], [1e20, "e"], ["s", {"__craton_timestamp": "2001-12-14 21:59:43.10 -5"}]]},
                       "d": [{"__craton_timestamp": "2017-03-07"}, {"__ansible_unsafe": "x"}]});
        assert_eq!(
            to_plain(&v),
            json!({"a": {"1": ["foo"], "false": "b", "null": "n", "1.5": "f", "1e+20": "e", "s": "2001-12-14T21:59:43.100000-05:00"},
                   "d": ["2017-03-07", {"__ansible_unsafe": "x"}]})
        );
        assert!(plain_raw(&crate::model::raw_from_value(&json!({"k": "say \"__craton_x\""}))).is_none());
        assert!(!holds_envelope(r#"{"k": "say \"__craton_x\""}"#));
        assert!(holds_envelope(r#"[{"__craton_timestamp": "2017-03-07"}]"#));
    }

    #[test]
    fn malformed_envelopes_are_refused_with_where() {
        let bad = |v: Value| check(&v).unwrap_err();
        assert!(bad(json!({"__craton_timestamp": "yesterday"})).contains("not a timestamp"));
        assert!(bad(json!({"__craton_timestamp": "2017-02-30"})).contains("day is out of range"));
        assert!(bad(json!({"__craton_timestamp": 1})).contains("must be a string"));
        assert!(bad(json!({"__craton_timestamp": "2017-03-07", "x": 1})).contains("that one key"));
        assert!(bad(json!({"__craton_map": {"1": 2}})).contains("[key, value] pairs"));
        assert!(bad(json!({"__craton_map": [[1]]})).contains("[key, value] pair"));
        assert!(bad(json!({"__craton_map": [[[1], 2]]})).contains("must be a string, number"));
        assert!(bad(json!({"__craton_map": [[1, "a"], [true, "b"]]})).contains("same key"));
        assert!(bad(json!({"__craton_map": [[2, "a"], [2.0, "b"]]})).contains("same key"));
        assert!(bad(json!({"__craton_nope": 1})).contains("unknown envelope"));
        assert_eq!(
            bad(json!({"a": [0, {"__craton_map": [[1, {"__craton_timestamp": "x"}]]}]})),
            "at .a[1].1: \"__craton_timestamp\" \"x\": \"x\" is not a timestamp"
        );
        for good in [
            json!({"__craton_map": [[1, "a"], ["1", "b"], [null, {"__craton_timestamp": "2017-03-07T10:20:49Z"}]]}),
            json!({"a": [1, "__craton_map"], "b": {"k": "v"}}),
            json!({"__craton_map": [["__craton_timestamp", "text"]]}),
        ] {
            assert_eq!(check(&good), Ok(()), "{good}");
        }
    }

    #[test]
    fn yaml_form_keeps_types() {
        assert_eq!(
            yaml(
                json!({"__craton_map": [[1, [1e20, 2.0, -0.5]], [null, true], [1.5, {"__craton_timestamp": "2001-12-14t21:59:43.10-05:00"}]]})
            ),
            "{1: [1.0e+20, 2.0, -0.5], null: true, 1.5: 2001-12-14T21:59:43.100000-05:00}"
        );
        assert_eq!(yaml(json!({"__ansible_unsafe": "{{ x }}"})), "!unsafe \"{{ x }}\"");
        assert_eq!(
            yaml(json!({"__ansible_vault": "$ANSIBLE_VAULT;1.1\n61\n"})),
            "!vault \"$ANSIBLE_VAULT;1.1\\n61\\n\""
        );
        assert_eq!(yaml(json!({"k": "yes"})), "{\"k\": \"yes\"}");
        assert_eq!(
            yaml(json!("a\"\\\u{1}\u{7f}\u{85}\u{2028}\u{feff}é😀\t")),
            "\"a\\\"\\\\\\u0001\\u007f\\u0085\\u2028\\ufeffé😀\\t\""
        );
    }
}
