//! Ansible's host pattern handling for inventory sources: `parse_address`
//! (`ansible/parsing/utils/addresses.py`) followed by `detect_range` /
//! `expand_hostname_range` (`ansible/plugins/inventory/__init__.py`).
//!
//! It exists because an INI (or YAML) inventory line such as `web[01:20]:2222`
//! only means something through those two functions, and their quirks decide
//! which hosts Ansible ends up with: a pattern `parse_address` rejects is still
//! expanded (only its port is lost), ranges are split on the *first* `[` and
//! the *first* `]`, alphabetic bounds are looked up as substrings of
//! `string.ascii_letters`, and the regular expressions use Python's Unicode
//! `\w` and `re.IGNORECASE`. The regular expressions are matched by hand here
//! (they are anchored and free of backreferences, so full-match membership is
//! all that matters), with Python 3.11's Unicode tables embedded so that `\w`
//! agrees with CPython rather than with Rust's idea of alphanumeric.

/// Guard against patterns that would make Ansible itself allocate without
/// bound (`h[0:999999999]`): Ansible would try; we refuse.
const MAX_EXPANDED_HOSTS: usize = 1_000_000;

/// Ansible expands nested ranges recursively and dies with Python's
/// RecursionError (about 1000 frames) on absurd patterns; stop well before.
const MAX_RANGES_PER_PATTERN: usize = 900;

/// `string.ascii_letters`, whose *substring* index Ansible uses for bounds.
const ASCII_LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Ansible's `parse_address(pattern, allow_ranges=True)` followed by `expand_hostname_range`
/// (ansible/parsing/utils/addresses.py, ansible/plugins/inventory/__init__.py):
/// the expanded host names in Ansible's order, and the port if the pattern had one.
///
/// As in Ansible, a pattern that is not a valid address is kept whole (port
/// included) and still range-expanded. A port of 0 is returned as `Some(0)`
/// even though Ansible's `Host()` then ignores it (`if port:`); ports above
/// 65535, which Ansible would store as given, are refused.
pub fn parse_host_pattern(pattern: &str) -> Result<(Vec<String>, Option<u16>), String> {
    let (host, port) = match parse_address(pattern) {
        Some((host, port_digits)) => (host, port_digits),
        None => (pattern, None),
    };
    let port = match port {
        Some(digits) => Some(port_number(digits)?),
        None => None,
    };
    let hosts = if detect_range(host) {
        let mut out = Vec::new();
        expand_hostname_range(host, 0, &mut out)?;
        out
    } else {
        vec![host.to_string()]
    };
    Ok((hosts, port))
}

/// Python's `int(port)` on the `[0-9]+` group, narrowed to what a TCP port can be.
fn port_number(digits: &str) -> Result<u16, String> {
    let trimmed = digits.trim_start_matches('0');
    if trimmed.is_empty() {
        return Ok(0);
    }
    if trimmed.len() > 5 {
        return Err(format!("port {digits} is out of range (0-65535)"));
    }
    trimmed
        .parse::<u32>()
        .ok()
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| format!("port {digits} is out of range (0-65535)"))
}

/// `detect_range`: any `[` means "expand me", valid range or not.
fn detect_range(line: &str) -> bool {
    line.contains('[')
}

/// `expand_hostname_range`, appending to `out` in Ansible's depth-first order.
fn expand_hostname_range(line: &str, depth: usize, out: &mut Vec<String>) -> Result<(), String> {
    if line.is_empty() {
        return Ok(());
    }
    if depth >= MAX_RANGES_PER_PATTERN {
        return Err("host pattern has too many ranges (Python's recursion limit)".to_string());
    }
    // line.replace('[', '|', 1).replace(']', '|', 1).split('|'), which also
    // splits on any '|' already in the name.
    let replaced = line.replacen('[', "|", 1).replacen(']', "|", 1);
    let parts: Vec<&str> = replaced.split('|').collect();
    let (head, nrange, tail) = match parts.as_slice() {
        [h, n, t] => (*h, *n, *t),
        p if p.len() > 3 => return Err("too many values to unpack (expected 3)".to_string()),
        p => return Err(format!("not enough values to unpack (expected 3, got {})", p.len())),
    };
    let bounds: Vec<&str> = nrange.split(':').collect();
    if bounds.len() != 2 && bounds.len() != 3 {
        return Err("host range must be begin:end or begin:end:step".to_string());
    }
    let beg = if bounds[0].is_empty() { "0" } else { bounds[0] };
    let end = bounds[1];
    let step = bounds.get(2).copied();
    if end.is_empty() {
        return Err("host range must specify end value".to_string());
    }
    // Zero padding is decided by the begin bound alone; Python's len() counts
    // code points.
    let pad = if beg.starts_with('0') && beg.chars().count() > 1 {
        let rlen = beg.chars().count();
        if rlen != end.chars().count() {
            return Err("host range must specify equal-length begin and end formats".to_string());
        }
        Some(rlen)
    } else {
        None
    };

    let seq: Vec<String> = match alpha_sequence(beg, end, step)? {
        Some(letters) => letters.into_iter().map(|c| fill(&c.to_string(), pad)).collect(),
        None => numeric_sequence(beg, end, step)?.into_iter().map(|n| fill(&n.to_string(), pad)).collect(),
    };

    for item in seq {
        let hname = format!("{head}{item}{tail}");
        if detect_range(&hname) {
            expand_hostname_range(&hname, depth + 1, out)?;
        } else {
            if out.len() >= MAX_EXPANDED_HOSTS {
                return Err(format!("host pattern expands to more than {MAX_EXPANDED_HOSTS} hosts"));
            }
            out.push(hname);
        }
    }
    Ok(())
}

/// `str(x)` or `str(x).zfill(rlen)`; zfill keeps a leading sign in front.
fn fill(s: &str, pad: Option<usize>) -> String {
    let Some(width) = pad else {
        return s.to_string();
    };
    let len = s.chars().count();
    if len >= width {
        return s.to_string();
    }
    let zeros = "0".repeat(width - len);
    match s.strip_prefix('-').or_else(|| s.strip_prefix('+')) {
        Some(rest) => format!("{}{zeros}{rest}", &s[..1]),
        None => format!("{zeros}{s}"),
    }
}

/// The `try:` half of Ansible's expansion: bounds found as substrings of
/// `ascii_letters`, sliced with `int(step)`. `Ok(None)` is the `except
/// ValueError` fall-through to the numeric range.
fn alpha_sequence(beg: &str, end: &str, step: Option<&str>) -> Result<Option<Vec<char>>, String> {
    let (Some(i_beg), Some(i_end)) = (ASCII_LETTERS.find(beg), ASCII_LETTERS.find(end)) else {
        return Ok(None);
    };
    if i_beg > i_end {
        return Err("host range must have begin <= end".to_string());
    }
    let step = match step {
        None => 1,
        Some(s) => match py_int(s) {
            Some(n) => n,
            None => return Ok(None),
        },
    };
    if step == 0 {
        // slice step cannot be zero: a ValueError, so the numeric branch runs
        return Ok(None);
    }
    let letters: Vec<char> = ASCII_LETTERS.chars().collect();
    Ok(Some(py_slice(&letters, i_beg as i128, i_end as i128 + 1, step)))
}

/// `letters[start:stop:step]` with Python's clamping rules.
fn py_slice(items: &[char], start: i128, stop: i128, step: i128) -> Vec<char> {
    let len = items.len() as i128;
    let clamp = |i: i128, lo: i128, hi: i128| {
        let i = if i < 0 { i + len } else { i };
        i.max(lo).min(hi)
    };
    let mut out = Vec::new();
    if step > 0 {
        let (mut i, stop) = (clamp(start, 0, len), clamp(stop, 0, len));
        while i < stop {
            out.push(items[i as usize]);
            i += step;
        }
    } else {
        let (mut i, stop) = (clamp(start, -1, len - 1), clamp(stop, -1, len - 1));
        while i > stop {
            out.push(items[i as usize]);
            i += step;
        }
    }
    out
}

/// `range(int(beg), int(end) + 1, int(step))`.
///
/// Bounds and step are limited to 64 bits (Python has no limit), which keeps
/// the arithmetic below far from overflowing i128.
fn numeric_sequence(beg: &str, end: &str, step: Option<&str>) -> Result<Vec<i128>, String> {
    let int = |s: &str| {
        let n = py_int(s).ok_or_else(|| format!("invalid literal for int() with base 10: {}", py_repr(s)))?;
        if i64::try_from(n).is_err() {
            return Err(format!("host range value {} does not fit in 64 bits", py_repr(s)));
        }
        Ok(n)
    };
    let b = int(beg)?;
    let e = int(end)? + 1;
    let st = match step {
        Some(s) => int(s)?,
        None => 1,
    };
    if st == 0 {
        return Err("range() arg 3 must not be zero".to_string());
    }
    let count = if st > 0 {
        if e > b {
            (e - b - 1) / st + 1
        } else {
            0
        }
    } else if b > e {
        (b - e - 1) / (-st) + 1
    } else {
        0
    };
    if count > MAX_EXPANDED_HOSTS as i128 {
        return Err(format!("host pattern expands to more than {MAX_EXPANDED_HOSTS} hosts"));
    }
    Ok((0..count).map(|k| b + k * st).collect())
}

/// Python's `int(s)` for base 10: surrounding Unicode white space, an
/// optional sign, Unicode decimal digits with single underscores between
/// them. `None` where Python raises ValueError (or the value leaves i128,
/// which Python would accept: a documented limit).
pub(crate) fn py_int(s: &str) -> Option<i128> {
    let s = s.trim_matches(is_py_space);
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
        return None;
    }
    let mut value: i128 = 0;
    for c in digits.chars().filter(|&c| c != '_') {
        let d = py_decimal_value(c)?;
        value = value.checked_mul(10)?.checked_add(i128::from(d))?;
    }
    Some(if neg { -value } else { value })
}

/// Python's `repr()` of a str, for error messages that quote input.
pub(crate) fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (0x80..0xa0).contains(&(c as u32)) => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

// ---------------------------------------------------------------------------
// parse_address and its regular expressions

/// `parse_address(address, allow_ranges=True)`: `None` where Ansible raises
/// ("Not a valid network hostname"), else the host part and the port digits.
fn parse_address(address: &str) -> Option<(&str, Option<&str>)> {
    let mut address = address;
    let mut port = None;
    // Both port patterns are tried in turn (the loop uses `continue`, not
    // `break`), so `[host:1]:2` loses its outer port to the inner one.
    if let Some((a, p)) = match_bracketed_hostport(address) {
        address = a;
        port = Some(p);
    }
    if let Some((a, p)) = match_hostport(address) {
        address = a;
        port = Some(p);
    }
    let matches = |f: fn(&str) -> bool| py_fullmatch(address, f);
    if matches(is_ipv4) || matches(is_ipv6) || matches(is_hostname) {
        Some((address, port))
    } else {
        None
    }
}

/// `re.match('^...$')`: Python's `$` also matches before one final newline.
fn py_fullmatch(s: &str, f: fn(&str) -> bool) -> bool {
    f(s) || s.strip_suffix('\n').is_some_and(f)
}

/// Splits `s` into the part before a trailing `:[0-9]+` (anchored with
/// Python's `$`) and the digits.
fn split_port(s: &str) -> Option<(&str, &str)> {
    let s = s.strip_suffix('\n').unwrap_or(s);
    let head_len = s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    if head_len == s.len() {
        return None;
    }
    let head = s[..head_len].strip_suffix(':')?;
    Some((head, &s[head_len..]))
}

/// `^\[(.+)\]:([0-9]+)$`
fn match_bracketed_hostport(s: &str) -> Option<(&str, &str)> {
    let (head, port) = split_port(s)?;
    let inner = head.strip_prefix('[')?.strip_suffix(']')?;
    if inner.is_empty() || inner.contains('\n') {
        return None;
    }
    Some((inner, port))
}

/// `^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$`
fn match_hostport(s: &str) -> Option<(&str, &str)> {
    let (head, port) = split_port(s)?;
    let mut rest = head;
    while let Some(c) = rest.chars().next() {
        match c {
            ':' | ']' => return None,
            '[' => {
                let close = rest.find(']')?;
                rest = &rest[close + 1..];
            }
            _ => rest = &rest[c.len_utf8()..],
        }
    }
    Some((head, port))
}

/// The `ipv4` pattern: four dotted components, each 0-255 or `[n:m(:s)]`.
fn is_ipv4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4 && parts.iter().all(|p| is_ipv4_component(p))
}

fn is_ipv4_component(p: &str) -> bool {
    let b = p.as_bytes();
    if b.iter().all(u8::is_ascii_digit) {
        return matches!(b, [_] | [_, _] | [b'0' | b'1', _, _] | [b'2', b'0'..=b'4', _] | [b'2', b'5', b'0'..=b'5']);
    }
    is_range(p, |a, b| is_digits(a) && is_digits(b))
}

/// `\[B:B(:[0-9]+)?\]` where `bounds` decides what the pair of B may be.
fn is_range(p: &str, bounds: impl Fn(&str, &str) -> bool) -> bool {
    let Some(inner) = p.strip_prefix('[').and_then(|p| p.strip_suffix(']')) else {
        return false;
    };
    let parts: Vec<&str> = inner.split(':').collect();
    let digits = is_digits;
    match parts.as_slice() {
        [a, b] => bounds(a, b),
        [a, b, step] => bounds(a, b) && digits(step),
        _ => false,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum V6Token<'a> {
    Part(&'a str),
    Colon,
    Dot,
}

/// The `ipv6` pattern (with `re.I`), matched on a token stream: hex groups of
/// one to four digits or hexadecimal ranges, separated by `:` and `.`.
fn is_ipv6(s: &str) -> bool {
    let Some(tokens) = ipv6_tokens(s) else {
        return false;
    };
    use V6Token::*;
    let part = |t: &V6Token<'_>| matches!(t, Part(_));
    // The number of groups if `ts` is empty or C(:C)*, else None.
    let groups = |ts: &[V6Token<'_>]| -> Option<usize> {
        if ts.is_empty() {
            return Some(0);
        }
        let shaped =
            ts.len() % 2 == 1 && ts.iter().enumerate().all(|(i, t)| if i % 2 == 0 { part(t) } else { *t == Colon });
        shaped.then_some(ts.len() / 2 + 1)
    };
    let is_lit = |t: &V6Token<'_>, lit: &str| matches!(t, Part(p) if p.eq_ignore_ascii_case(lit));

    // IPv4-in-IPv6 forms end in C.C.C.C.
    let n = tokens.len();
    if n >= 7 && tokens[n - 7..].iter().enumerate().all(|(i, t)| if i % 2 == 0 { part(t) } else { *t == Dot }) {
        let head = &tokens[..n - 7];
        let zeros_then = |count: usize, rest: &[V6Token<'_>]| -> bool {
            head.len() == count * 2 + rest.len()
                && (0..count).all(|i| is_lit(&head[2 * i], "0") && head[2 * i + 1] == Colon)
                && head[count * 2..].iter().zip(rest).all(|(a, b)| match b {
                    Part(lit) => is_lit(a, lit),
                    other => a == other,
                })
        };
        return zeros_then(6, &[])
            || zeros_then(0, &[Colon, Colon])
            || zeros_then(0, &[Colon, Colon, Part("ffff"), Colon])
            || zeros_then(5, &[Part("ffff"), Colon]);
    }
    if tokens.contains(&Dot) {
        return false;
    }
    let double = tokens.windows(2).position(|w| w == [Colon, Colon]);
    match double {
        None => groups(&tokens) == Some(8),
        Some(at) => {
            let (left, right) = (&tokens[..at], &tokens[at + 2..]);
            match (groups(left), groups(right)) {
                (Some(a), Some(b)) => a <= 6 && b <= 6 && a + b <= 7,
                _ => false,
            }
        }
    }
}

fn ipv6_tokens(s: &str) -> Option<Vec<V6Token<'_>>> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        match c {
            ':' => {
                out.push(V6Token::Colon);
                rest = &rest[1..];
            }
            '.' => {
                out.push(V6Token::Dot);
                rest = &rest[1..];
            }
            '[' => {
                let close = rest.find(']')?;
                let hex = |x: &str| !x.is_empty() && x.bytes().all(|c| c.is_ascii_hexdigit());
                if !is_range(&rest[..=close], |a, b| hex(a) && hex(b)) {
                    return None;
                }
                out.push(V6Token::Part(&rest[..=close]));
                rest = &rest[close + 1..];
            }
            c if c.is_ascii_hexdigit() => {
                let len = rest.bytes().take_while(u8::is_ascii_hexdigit).count();
                if len > 4 {
                    return None;
                }
                out.push(V6Token::Part(&rest[..len]));
                rest = &rest[len..];
            }
            _ => return None,
        }
    }
    // Two groups side by side (`[0:f]a`) fit no alternative.
    if out.windows(2).any(|w| matches!(w, [V6Token::Part(_), V6Token::Part(_)])) {
        return None;
    }
    Some(out)
}

/// The `hostname` pattern: dot-separated labels of `\w`, `-` and ranges,
/// starting with `\w` or a range and not ending in `_` or `-`.
fn is_hostname(s: &str) -> bool {
    s.split('.').all(is_label)
}

fn is_label(label: &str) -> bool {
    let mut rest = label;
    let mut first = true;
    let mut last_char = None;
    while let Some(c) = rest.chars().next() {
        if c == '[' {
            let Some(close) = rest.find(']') else {
                return false;
            };
            if !is_range(&rest[..=close], is_alnum_range_bounds) {
                return false;
            }
            rest = &rest[close + 1..];
            last_char = Some(']');
        } else if is_py_word(c) || (c == '-' && !first) {
            rest = &rest[c.len_utf8()..];
            last_char = Some(c);
        } else {
            return false;
        }
        first = false;
    }
    matches!(last_char, Some(c) if c != '_' && c != '-')
}

/// The bounds of `alphanumeric_range`: two `[a-z]` letters under `re.I`
/// (which also folds in İ, ı, ſ and the Kelvin sign) or two `[0-9]+`.
fn is_alnum_range_bounds(a: &str, b: &str) -> bool {
    let letter = |s: &str| {
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => c.is_ascii_alphabetic() || matches!(c, '\u{130}' | '\u{131}' | '\u{17f}' | '\u{212a}'),
            _ => false,
        }
    };
    (letter(a) && letter(b)) || (is_digits(a) && is_digits(b))
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())
}

// ---------------------------------------------------------------------------
// Python 3.11's Unicode character classes, shared with the INI parser.

/// Regex `\w` on a str pattern: `str.isalnum()` or `_`.
pub(crate) fn is_py_word(c: char) -> bool {
    c == '_' || in_table(&PY_ALNUM, c)
}

/// `str.isspace()`, which is also what `str.strip()` and regex `\s` use:
/// Unicode White_Space plus the four ASCII information separators.
pub(crate) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// The value of a Unicode decimal digit: every Nd block is ten consecutive
/// code points starting at a zero.
fn py_decimal_value(c: char) -> Option<u32> {
    let cp = c as u32;
    PY_DECIMAL.iter().find(|(lo, hi)| (*lo..=*hi).contains(&cp)).map(|(lo, _)| (cp - lo) % 10)
}

fn in_table(table: &[(u32, u32)], c: char) -> bool {
    let cp = c as u32;
    table
        .binary_search_by(|&(lo, hi)| {
            if hi < cp {
                std::cmp::Ordering::Less
            } else if lo > cp {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

// Generated by gen_tables.py from Python 3.11.7 (Unicode 14.0.0).
#[rustfmt::skip]
const PY_ALNUM: [(u32, u32); 733] = [
    (0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A), (0xAA, 0xAA), (0xB2, 0xB3), (0xB5, 0xB5),
    (0xB9, 0xBA), (0xBC, 0xBE), (0xC0, 0xD6), (0xD8, 0xF6), (0xF8, 0x2C1), (0x2C6, 0x2D1),
    (0x2E0, 0x2E4), (0x2EC, 0x2EC), (0x2EE, 0x2EE), (0x370, 0x374), (0x376, 0x377), (0x37A, 0x37D),
    (0x37F, 0x37F), (0x386, 0x386), (0x388, 0x38A), (0x38C, 0x38C), (0x38E, 0x3A1), (0x3A3, 0x3F5),
    (0x3F7, 0x481), (0x48A, 0x52F), (0x531, 0x556), (0x559, 0x559), (0x560, 0x588), (0x5D0, 0x5EA),
    (0x5EF, 0x5F2), (0x620, 0x64A), (0x660, 0x669), (0x66E, 0x66F), (0x671, 0x6D3), (0x6D5, 0x6D5),
    (0x6E5, 0x6E6), (0x6EE, 0x6FC), (0x6FF, 0x6FF), (0x710, 0x710), (0x712, 0x72F), (0x74D, 0x7A5),
    (0x7B1, 0x7B1), (0x7C0, 0x7EA), (0x7F4, 0x7F5), (0x7FA, 0x7FA), (0x800, 0x815), (0x81A, 0x81A),
    (0x824, 0x824), (0x828, 0x828), (0x840, 0x858), (0x860, 0x86A), (0x870, 0x887), (0x889, 0x88E),
    (0x8A0, 0x8C9), (0x904, 0x939), (0x93D, 0x93D), (0x950, 0x950), (0x958, 0x961), (0x966, 0x96F),
    (0x971, 0x980), (0x985, 0x98C), (0x98F, 0x990), (0x993, 0x9A8), (0x9AA, 0x9B0), (0x9B2, 0x9B2),
    (0x9B6, 0x9B9), (0x9BD, 0x9BD), (0x9CE, 0x9CE), (0x9DC, 0x9DD), (0x9DF, 0x9E1), (0x9E6, 0x9F1),
    (0x9F4, 0x9F9), (0x9FC, 0x9FC), (0xA05, 0xA0A), (0xA0F, 0xA10), (0xA13, 0xA28), (0xA2A, 0xA30),
    (0xA32, 0xA33), (0xA35, 0xA36), (0xA38, 0xA39), (0xA59, 0xA5C), (0xA5E, 0xA5E), (0xA66, 0xA6F),
    (0xA72, 0xA74), (0xA85, 0xA8D), (0xA8F, 0xA91), (0xA93, 0xAA8), (0xAAA, 0xAB0), (0xAB2, 0xAB3),
    (0xAB5, 0xAB9), (0xABD, 0xABD), (0xAD0, 0xAD0), (0xAE0, 0xAE1), (0xAE6, 0xAEF), (0xAF9, 0xAF9),
    (0xB05, 0xB0C), (0xB0F, 0xB10), (0xB13, 0xB28), (0xB2A, 0xB30), (0xB32, 0xB33), (0xB35, 0xB39),
    (0xB3D, 0xB3D), (0xB5C, 0xB5D), (0xB5F, 0xB61), (0xB66, 0xB6F), (0xB71, 0xB77), (0xB83, 0xB83),
    (0xB85, 0xB8A), (0xB8E, 0xB90), (0xB92, 0xB95), (0xB99, 0xB9A), (0xB9C, 0xB9C), (0xB9E, 0xB9F),
    (0xBA3, 0xBA4), (0xBA8, 0xBAA), (0xBAE, 0xBB9), (0xBD0, 0xBD0), (0xBE6, 0xBF2), (0xC05, 0xC0C),
    (0xC0E, 0xC10), (0xC12, 0xC28), (0xC2A, 0xC39), (0xC3D, 0xC3D), (0xC58, 0xC5A), (0xC5D, 0xC5D),
    (0xC60, 0xC61), (0xC66, 0xC6F), (0xC78, 0xC7E), (0xC80, 0xC80), (0xC85, 0xC8C), (0xC8E, 0xC90),
    (0xC92, 0xCA8), (0xCAA, 0xCB3), (0xCB5, 0xCB9), (0xCBD, 0xCBD), (0xCDD, 0xCDE), (0xCE0, 0xCE1),
    (0xCE6, 0xCEF), (0xCF1, 0xCF2), (0xD04, 0xD0C), (0xD0E, 0xD10), (0xD12, 0xD3A), (0xD3D, 0xD3D),
    (0xD4E, 0xD4E), (0xD54, 0xD56), (0xD58, 0xD61), (0xD66, 0xD78), (0xD7A, 0xD7F), (0xD85, 0xD96),
    (0xD9A, 0xDB1), (0xDB3, 0xDBB), (0xDBD, 0xDBD), (0xDC0, 0xDC6), (0xDE6, 0xDEF), (0xE01, 0xE30),
    (0xE32, 0xE33), (0xE40, 0xE46), (0xE50, 0xE59), (0xE81, 0xE82), (0xE84, 0xE84), (0xE86, 0xE8A),
    (0xE8C, 0xEA3), (0xEA5, 0xEA5), (0xEA7, 0xEB0), (0xEB2, 0xEB3), (0xEBD, 0xEBD), (0xEC0, 0xEC4),
    (0xEC6, 0xEC6), (0xED0, 0xED9), (0xEDC, 0xEDF), (0xF00, 0xF00), (0xF20, 0xF33), (0xF40, 0xF47),
    (0xF49, 0xF6C), (0xF88, 0xF8C), (0x1000, 0x102A), (0x103F, 0x1049), (0x1050, 0x1055),
    (0x105A, 0x105D), (0x1061, 0x1061), (0x1065, 0x1066), (0x106E, 0x1070), (0x1075, 0x1081),
    (0x108E, 0x108E), (0x1090, 0x1099), (0x10A0, 0x10C5), (0x10C7, 0x10C7), (0x10CD, 0x10CD),
    (0x10D0, 0x10FA), (0x10FC, 0x1248), (0x124A, 0x124D), (0x1250, 0x1256), (0x1258, 0x1258),
    (0x125A, 0x125D), (0x1260, 0x1288), (0x128A, 0x128D), (0x1290, 0x12B0), (0x12B2, 0x12B5),
    (0x12B8, 0x12BE), (0x12C0, 0x12C0), (0x12C2, 0x12C5), (0x12C8, 0x12D6), (0x12D8, 0x1310),
    (0x1312, 0x1315), (0x1318, 0x135A), (0x1369, 0x137C), (0x1380, 0x138F), (0x13A0, 0x13F5),
    (0x13F8, 0x13FD), (0x1401, 0x166C), (0x166F, 0x167F), (0x1681, 0x169A), (0x16A0, 0x16EA),
    (0x16EE, 0x16F8), (0x1700, 0x1711), (0x171F, 0x1731), (0x1740, 0x1751), (0x1760, 0x176C),
    (0x176E, 0x1770), (0x1780, 0x17B3), (0x17D7, 0x17D7), (0x17DC, 0x17DC), (0x17E0, 0x17E9),
    (0x17F0, 0x17F9), (0x1810, 0x1819), (0x1820, 0x1878), (0x1880, 0x1884), (0x1887, 0x18A8),
    (0x18AA, 0x18AA), (0x18B0, 0x18F5), (0x1900, 0x191E), (0x1946, 0x196D), (0x1970, 0x1974),
    (0x1980, 0x19AB), (0x19B0, 0x19C9), (0x19D0, 0x19DA), (0x1A00, 0x1A16), (0x1A20, 0x1A54),
    (0x1A80, 0x1A89), (0x1A90, 0x1A99), (0x1AA7, 0x1AA7), (0x1B05, 0x1B33), (0x1B45, 0x1B4C),
    (0x1B50, 0x1B59), (0x1B83, 0x1BA0), (0x1BAE, 0x1BE5), (0x1C00, 0x1C23), (0x1C40, 0x1C49),
    (0x1C4D, 0x1C7D), (0x1C80, 0x1C88), (0x1C90, 0x1CBA), (0x1CBD, 0x1CBF), (0x1CE9, 0x1CEC),
    (0x1CEE, 0x1CF3), (0x1CF5, 0x1CF6), (0x1CFA, 0x1CFA), (0x1D00, 0x1DBF), (0x1E00, 0x1F15),
    (0x1F18, 0x1F1D), (0x1F20, 0x1F45), (0x1F48, 0x1F4D), (0x1F50, 0x1F57), (0x1F59, 0x1F59),
    (0x1F5B, 0x1F5B), (0x1F5D, 0x1F5D), (0x1F5F, 0x1F7D), (0x1F80, 0x1FB4), (0x1FB6, 0x1FBC),
    (0x1FBE, 0x1FBE), (0x1FC2, 0x1FC4), (0x1FC6, 0x1FCC), (0x1FD0, 0x1FD3), (0x1FD6, 0x1FDB),
    (0x1FE0, 0x1FEC), (0x1FF2, 0x1FF4), (0x1FF6, 0x1FFC), (0x2070, 0x2071), (0x2074, 0x2079),
    (0x207F, 0x2089), (0x2090, 0x209C), (0x2102, 0x2102), (0x2107, 0x2107), (0x210A, 0x2113),
    (0x2115, 0x2115), (0x2119, 0x211D), (0x2124, 0x2124), (0x2126, 0x2126), (0x2128, 0x2128),
    (0x212A, 0x212D), (0x212F, 0x2139), (0x213C, 0x213F), (0x2145, 0x2149), (0x214E, 0x214E),
    (0x2150, 0x2189), (0x2460, 0x249B), (0x24EA, 0x24FF), (0x2776, 0x2793), (0x2C00, 0x2CE4),
    (0x2CEB, 0x2CEE), (0x2CF2, 0x2CF3), (0x2CFD, 0x2CFD), (0x2D00, 0x2D25), (0x2D27, 0x2D27),
    (0x2D2D, 0x2D2D), (0x2D30, 0x2D67), (0x2D6F, 0x2D6F), (0x2D80, 0x2D96), (0x2DA0, 0x2DA6),
    (0x2DA8, 0x2DAE), (0x2DB0, 0x2DB6), (0x2DB8, 0x2DBE), (0x2DC0, 0x2DC6), (0x2DC8, 0x2DCE),
    (0x2DD0, 0x2DD6), (0x2DD8, 0x2DDE), (0x2E2F, 0x2E2F), (0x3005, 0x3007), (0x3021, 0x3029),
    (0x3031, 0x3035), (0x3038, 0x303C), (0x3041, 0x3096), (0x309D, 0x309F), (0x30A1, 0x30FA),
    (0x30FC, 0x30FF), (0x3105, 0x312F), (0x3131, 0x318E), (0x3192, 0x3195), (0x31A0, 0x31BF),
    (0x31F0, 0x31FF), (0x3220, 0x3229), (0x3248, 0x324F), (0x3251, 0x325F), (0x3280, 0x3289),
    (0x32B1, 0x32BF), (0x3400, 0x4DBF), (0x4E00, 0xA48C), (0xA4D0, 0xA4FD), (0xA500, 0xA60C),
    (0xA610, 0xA62B), (0xA640, 0xA66E), (0xA67F, 0xA69D), (0xA6A0, 0xA6EF), (0xA717, 0xA71F),
    (0xA722, 0xA788), (0xA78B, 0xA7CA), (0xA7D0, 0xA7D1), (0xA7D3, 0xA7D3), (0xA7D5, 0xA7D9),
    (0xA7F2, 0xA801), (0xA803, 0xA805), (0xA807, 0xA80A), (0xA80C, 0xA822), (0xA830, 0xA835),
    (0xA840, 0xA873), (0xA882, 0xA8B3), (0xA8D0, 0xA8D9), (0xA8F2, 0xA8F7), (0xA8FB, 0xA8FB),
    (0xA8FD, 0xA8FE), (0xA900, 0xA925), (0xA930, 0xA946), (0xA960, 0xA97C), (0xA984, 0xA9B2),
    (0xA9CF, 0xA9D9), (0xA9E0, 0xA9E4), (0xA9E6, 0xA9FE), (0xAA00, 0xAA28), (0xAA40, 0xAA42),
    (0xAA44, 0xAA4B), (0xAA50, 0xAA59), (0xAA60, 0xAA76), (0xAA7A, 0xAA7A), (0xAA7E, 0xAAAF),
    (0xAAB1, 0xAAB1), (0xAAB5, 0xAAB6), (0xAAB9, 0xAABD), (0xAAC0, 0xAAC0), (0xAAC2, 0xAAC2),
    (0xAADB, 0xAADD), (0xAAE0, 0xAAEA), (0xAAF2, 0xAAF4), (0xAB01, 0xAB06), (0xAB09, 0xAB0E),
    (0xAB11, 0xAB16), (0xAB20, 0xAB26), (0xAB28, 0xAB2E), (0xAB30, 0xAB5A), (0xAB5C, 0xAB69),
    (0xAB70, 0xABE2), (0xABF0, 0xABF9), (0xAC00, 0xD7A3), (0xD7B0, 0xD7C6), (0xD7CB, 0xD7FB),
    (0xF900, 0xFA6D), (0xFA70, 0xFAD9), (0xFB00, 0xFB06), (0xFB13, 0xFB17), (0xFB1D, 0xFB1D),
    (0xFB1F, 0xFB28), (0xFB2A, 0xFB36), (0xFB38, 0xFB3C), (0xFB3E, 0xFB3E), (0xFB40, 0xFB41),
    (0xFB43, 0xFB44), (0xFB46, 0xFBB1), (0xFBD3, 0xFD3D), (0xFD50, 0xFD8F), (0xFD92, 0xFDC7),
    (0xFDF0, 0xFDFB), (0xFE70, 0xFE74), (0xFE76, 0xFEFC), (0xFF10, 0xFF19), (0xFF21, 0xFF3A),
    (0xFF41, 0xFF5A), (0xFF66, 0xFFBE), (0xFFC2, 0xFFC7), (0xFFCA, 0xFFCF), (0xFFD2, 0xFFD7),
    (0xFFDA, 0xFFDC), (0x10000, 0x1000B), (0x1000D, 0x10026), (0x10028, 0x1003A),
    (0x1003C, 0x1003D), (0x1003F, 0x1004D), (0x10050, 0x1005D), (0x10080, 0x100FA),
    (0x10107, 0x10133), (0x10140, 0x10178), (0x1018A, 0x1018B), (0x10280, 0x1029C),
    (0x102A0, 0x102D0), (0x102E1, 0x102FB), (0x10300, 0x10323), (0x1032D, 0x1034A),
    (0x10350, 0x10375), (0x10380, 0x1039D), (0x103A0, 0x103C3), (0x103C8, 0x103CF),
    (0x103D1, 0x103D5), (0x10400, 0x1049D), (0x104A0, 0x104A9), (0x104B0, 0x104D3),
    (0x104D8, 0x104FB), (0x10500, 0x10527), (0x10530, 0x10563), (0x10570, 0x1057A),
    (0x1057C, 0x1058A), (0x1058C, 0x10592), (0x10594, 0x10595), (0x10597, 0x105A1),
    (0x105A3, 0x105B1), (0x105B3, 0x105B9), (0x105BB, 0x105BC), (0x10600, 0x10736),
    (0x10740, 0x10755), (0x10760, 0x10767), (0x10780, 0x10785), (0x10787, 0x107B0),
    (0x107B2, 0x107BA), (0x10800, 0x10805), (0x10808, 0x10808), (0x1080A, 0x10835),
    (0x10837, 0x10838), (0x1083C, 0x1083C), (0x1083F, 0x10855), (0x10858, 0x10876),
    (0x10879, 0x1089E), (0x108A7, 0x108AF), (0x108E0, 0x108F2), (0x108F4, 0x108F5),
    (0x108FB, 0x1091B), (0x10920, 0x10939), (0x10980, 0x109B7), (0x109BC, 0x109CF),
    (0x109D2, 0x10A00), (0x10A10, 0x10A13), (0x10A15, 0x10A17), (0x10A19, 0x10A35),
    (0x10A40, 0x10A48), (0x10A60, 0x10A7E), (0x10A80, 0x10A9F), (0x10AC0, 0x10AC7),
    (0x10AC9, 0x10AE4), (0x10AEB, 0x10AEF), (0x10B00, 0x10B35), (0x10B40, 0x10B55),
    (0x10B58, 0x10B72), (0x10B78, 0x10B91), (0x10BA9, 0x10BAF), (0x10C00, 0x10C48),
    (0x10C80, 0x10CB2), (0x10CC0, 0x10CF2), (0x10CFA, 0x10D23), (0x10D30, 0x10D39),
    (0x10E60, 0x10E7E), (0x10E80, 0x10EA9), (0x10EB0, 0x10EB1), (0x10F00, 0x10F27),
    (0x10F30, 0x10F45), (0x10F51, 0x10F54), (0x10F70, 0x10F81), (0x10FB0, 0x10FCB),
    (0x10FE0, 0x10FF6), (0x11003, 0x11037), (0x11052, 0x1106F), (0x11071, 0x11072),
    (0x11075, 0x11075), (0x11083, 0x110AF), (0x110D0, 0x110E8), (0x110F0, 0x110F9),
    (0x11103, 0x11126), (0x11136, 0x1113F), (0x11144, 0x11144), (0x11147, 0x11147),
    (0x11150, 0x11172), (0x11176, 0x11176), (0x11183, 0x111B2), (0x111C1, 0x111C4),
    (0x111D0, 0x111DA), (0x111DC, 0x111DC), (0x111E1, 0x111F4), (0x11200, 0x11211),
    (0x11213, 0x1122B), (0x11280, 0x11286), (0x11288, 0x11288), (0x1128A, 0x1128D),
    (0x1128F, 0x1129D), (0x1129F, 0x112A8), (0x112B0, 0x112DE), (0x112F0, 0x112F9),
    (0x11305, 0x1130C), (0x1130F, 0x11310), (0x11313, 0x11328), (0x1132A, 0x11330),
    (0x11332, 0x11333), (0x11335, 0x11339), (0x1133D, 0x1133D), (0x11350, 0x11350),
    (0x1135D, 0x11361), (0x11400, 0x11434), (0x11447, 0x1144A), (0x11450, 0x11459),
    (0x1145F, 0x11461), (0x11480, 0x114AF), (0x114C4, 0x114C5), (0x114C7, 0x114C7),
    (0x114D0, 0x114D9), (0x11580, 0x115AE), (0x115D8, 0x115DB), (0x11600, 0x1162F),
    (0x11644, 0x11644), (0x11650, 0x11659), (0x11680, 0x116AA), (0x116B8, 0x116B8),
    (0x116C0, 0x116C9), (0x11700, 0x1171A), (0x11730, 0x1173B), (0x11740, 0x11746),
    (0x11800, 0x1182B), (0x118A0, 0x118F2), (0x118FF, 0x11906), (0x11909, 0x11909),
    (0x1190C, 0x11913), (0x11915, 0x11916), (0x11918, 0x1192F), (0x1193F, 0x1193F),
    (0x11941, 0x11941), (0x11950, 0x11959), (0x119A0, 0x119A7), (0x119AA, 0x119D0),
    (0x119E1, 0x119E1), (0x119E3, 0x119E3), (0x11A00, 0x11A00), (0x11A0B, 0x11A32),
    (0x11A3A, 0x11A3A), (0x11A50, 0x11A50), (0x11A5C, 0x11A89), (0x11A9D, 0x11A9D),
    (0x11AB0, 0x11AF8), (0x11C00, 0x11C08), (0x11C0A, 0x11C2E), (0x11C40, 0x11C40),
    (0x11C50, 0x11C6C), (0x11C72, 0x11C8F), (0x11D00, 0x11D06), (0x11D08, 0x11D09),
    (0x11D0B, 0x11D30), (0x11D46, 0x11D46), (0x11D50, 0x11D59), (0x11D60, 0x11D65),
    (0x11D67, 0x11D68), (0x11D6A, 0x11D89), (0x11D98, 0x11D98), (0x11DA0, 0x11DA9),
    (0x11EE0, 0x11EF2), (0x11FB0, 0x11FB0), (0x11FC0, 0x11FD4), (0x12000, 0x12399),
    (0x12400, 0x1246E), (0x12480, 0x12543), (0x12F90, 0x12FF0), (0x13000, 0x1342E),
    (0x14400, 0x14646), (0x16800, 0x16A38), (0x16A40, 0x16A5E), (0x16A60, 0x16A69),
    (0x16A70, 0x16ABE), (0x16AC0, 0x16AC9), (0x16AD0, 0x16AED), (0x16B00, 0x16B2F),
    (0x16B40, 0x16B43), (0x16B50, 0x16B59), (0x16B5B, 0x16B61), (0x16B63, 0x16B77),
    (0x16B7D, 0x16B8F), (0x16E40, 0x16E96), (0x16F00, 0x16F4A), (0x16F50, 0x16F50),
    (0x16F93, 0x16F9F), (0x16FE0, 0x16FE1), (0x16FE3, 0x16FE3), (0x17000, 0x187F7),
    (0x18800, 0x18CD5), (0x18D00, 0x18D08), (0x1AFF0, 0x1AFF3), (0x1AFF5, 0x1AFFB),
    (0x1AFFD, 0x1AFFE), (0x1B000, 0x1B122), (0x1B150, 0x1B152), (0x1B164, 0x1B167),
    (0x1B170, 0x1B2FB), (0x1BC00, 0x1BC6A), (0x1BC70, 0x1BC7C), (0x1BC80, 0x1BC88),
    (0x1BC90, 0x1BC99), (0x1D2E0, 0x1D2F3), (0x1D360, 0x1D378), (0x1D400, 0x1D454),
    (0x1D456, 0x1D49C), (0x1D49E, 0x1D49F), (0x1D4A2, 0x1D4A2), (0x1D4A5, 0x1D4A6),
    (0x1D4A9, 0x1D4AC), (0x1D4AE, 0x1D4B9), (0x1D4BB, 0x1D4BB), (0x1D4BD, 0x1D4C3),
    (0x1D4C5, 0x1D505), (0x1D507, 0x1D50A), (0x1D50D, 0x1D514), (0x1D516, 0x1D51C),
    (0x1D51E, 0x1D539), (0x1D53B, 0x1D53E), (0x1D540, 0x1D544), (0x1D546, 0x1D546),
    (0x1D54A, 0x1D550), (0x1D552, 0x1D6A5), (0x1D6A8, 0x1D6C0), (0x1D6C2, 0x1D6DA),
    (0x1D6DC, 0x1D6FA), (0x1D6FC, 0x1D714), (0x1D716, 0x1D734), (0x1D736, 0x1D74E),
    (0x1D750, 0x1D76E), (0x1D770, 0x1D788), (0x1D78A, 0x1D7A8), (0x1D7AA, 0x1D7C2),
    (0x1D7C4, 0x1D7CB), (0x1D7CE, 0x1D7FF), (0x1DF00, 0x1DF1E), (0x1E100, 0x1E12C),
    (0x1E137, 0x1E13D), (0x1E140, 0x1E149), (0x1E14E, 0x1E14E), (0x1E290, 0x1E2AD),
    (0x1E2C0, 0x1E2EB), (0x1E2F0, 0x1E2F9), (0x1E7E0, 0x1E7E6), (0x1E7E8, 0x1E7EB),
    (0x1E7ED, 0x1E7EE), (0x1E7F0, 0x1E7FE), (0x1E800, 0x1E8C4), (0x1E8C7, 0x1E8CF),
    (0x1E900, 0x1E943), (0x1E94B, 0x1E94B), (0x1E950, 0x1E959), (0x1EC71, 0x1ECAB),
    (0x1ECAD, 0x1ECAF), (0x1ECB1, 0x1ECB4), (0x1ED01, 0x1ED2D), (0x1ED2F, 0x1ED3D),
    (0x1EE00, 0x1EE03), (0x1EE05, 0x1EE1F), (0x1EE21, 0x1EE22), (0x1EE24, 0x1EE24),
    (0x1EE27, 0x1EE27), (0x1EE29, 0x1EE32), (0x1EE34, 0x1EE37), (0x1EE39, 0x1EE39),
    (0x1EE3B, 0x1EE3B), (0x1EE42, 0x1EE42), (0x1EE47, 0x1EE47), (0x1EE49, 0x1EE49),
    (0x1EE4B, 0x1EE4B), (0x1EE4D, 0x1EE4F), (0x1EE51, 0x1EE52), (0x1EE54, 0x1EE54),
    (0x1EE57, 0x1EE57), (0x1EE59, 0x1EE59), (0x1EE5B, 0x1EE5B), (0x1EE5D, 0x1EE5D),
    (0x1EE5F, 0x1EE5F), (0x1EE61, 0x1EE62), (0x1EE64, 0x1EE64), (0x1EE67, 0x1EE6A),
    (0x1EE6C, 0x1EE72), (0x1EE74, 0x1EE77), (0x1EE79, 0x1EE7C), (0x1EE7E, 0x1EE7E),
    (0x1EE80, 0x1EE89), (0x1EE8B, 0x1EE9B), (0x1EEA1, 0x1EEA3), (0x1EEA5, 0x1EEA9),
    (0x1EEAB, 0x1EEBB), (0x1F100, 0x1F10C), (0x1FBF0, 0x1FBF9), (0x20000, 0x2A6DF),
    (0x2A700, 0x2B738), (0x2B740, 0x2B81D), (0x2B820, 0x2CEA1), (0x2CEB0, 0x2EBE0),
    (0x2F800, 0x2FA1D), (0x30000, 0x3134A),
];
#[rustfmt::skip]
const PY_DECIMAL: [(u32, u32); 62] = [
    (0x30, 0x39), (0x660, 0x669), (0x6F0, 0x6F9), (0x7C0, 0x7C9), (0x966, 0x96F), (0x9E6, 0x9EF),
    (0xA66, 0xA6F), (0xAE6, 0xAEF), (0xB66, 0xB6F), (0xBE6, 0xBEF), (0xC66, 0xC6F), (0xCE6, 0xCEF),
    (0xD66, 0xD6F), (0xDE6, 0xDEF), (0xE50, 0xE59), (0xED0, 0xED9), (0xF20, 0xF29),
    (0x1040, 0x1049), (0x1090, 0x1099), (0x17E0, 0x17E9), (0x1810, 0x1819), (0x1946, 0x194F),
    (0x19D0, 0x19D9), (0x1A80, 0x1A89), (0x1A90, 0x1A99), (0x1B50, 0x1B59), (0x1BB0, 0x1BB9),
    (0x1C40, 0x1C49), (0x1C50, 0x1C59), (0xA620, 0xA629), (0xA8D0, 0xA8D9), (0xA900, 0xA909),
    (0xA9D0, 0xA9D9), (0xA9F0, 0xA9F9), (0xAA50, 0xAA59), (0xABF0, 0xABF9), (0xFF10, 0xFF19),
    (0x104A0, 0x104A9), (0x10D30, 0x10D39), (0x11066, 0x1106F), (0x110F0, 0x110F9),
    (0x11136, 0x1113F), (0x111D0, 0x111D9), (0x112F0, 0x112F9), (0x11450, 0x11459),
    (0x114D0, 0x114D9), (0x11650, 0x11659), (0x116C0, 0x116C9), (0x11730, 0x11739),
    (0x118E0, 0x118E9), (0x11950, 0x11959), (0x11C50, 0x11C59), (0x11D50, 0x11D59),
    (0x11DA0, 0x11DA9), (0x16A60, 0x16A69), (0x16AC0, 0x16AC9), (0x16B50, 0x16B59),
    (0x1D7CE, 0x1D7FF), (0x1E140, 0x1E149), (0x1E2F0, 0x1E2F9), (0x1E950, 0x1E959),
    (0x1FBF0, 0x1FBF9),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(p: &str) -> Vec<String> {
        parse_host_pattern(p).unwrap().0
    }

    fn port(p: &str) -> Option<u16> {
        parse_host_pattern(p).unwrap().1
    }

    #[test]
    fn numeric_ranges_keep_zero_padding_and_steps() {
        assert_eq!(hosts("web[01:03].example.com"), ["web01.example.com", "web02.example.com", "web03.example.com"]);
        assert_eq!(hosts("h[1:10:3]"), ["h1", "h4", "h7", "h10"]);
        assert_eq!(hosts("h[:2]"), ["h0", "h1", "h2"]);
        assert_eq!(hosts("pad[08:10]"), ["pad08", "pad09", "pad10"]);
        // Python's int() reads any Unicode decimal digits; str() writes ASCII.
        assert_eq!(hosts("n[١:٣]"), ["n1", "n2", "n3"]);
        // An empty numeric range is no error, just no hosts.
        assert!(hosts("bad[3:1]").is_empty());
    }

    #[test]
    fn alphabetic_ranges_are_substrings_of_ascii_letters() {
        assert_eq!(hosts("node[a:c]"), ["nodea", "nodeb", "nodec"]);
        assert_eq!(hosts("x[y:B]"), ["xy", "xz", "xA", "xB"]);
        assert_eq!(hosts("x[ab:cd]"), ["xa", "xb", "xc"]);
        assert_eq!(hosts("x[a:e:2]"), ["xa", "xc", "xe"]);
    }

    #[test]
    fn several_ranges_expand_depth_first() {
        assert_eq!(hosts("a[1:2]b[x:y]"), ["a1bx", "a1by", "a2bx", "a2by"]);
    }

    #[test]
    fn ports_are_split_off_valid_addresses_only() {
        assert_eq!(parse_host_pattern("10.0.0.1:2222").unwrap(), (vec!["10.0.0.1".to_string()], Some(2222)));
        assert_eq!(parse_host_pattern("[::1]:22").unwrap(), (vec!["::1".to_string()], Some(22)));
        assert_eq!(parse_host_pattern("fe80::1").unwrap(), (vec!["fe80::1".to_string()], None));
        assert_eq!(parse_host_pattern("::ffff:1.2.3.4").unwrap().1, None);
        assert_eq!(parse_host_pattern("db.example.com:22").unwrap(), (vec!["db.example.com".to_string()], Some(22)));
        assert_eq!(parse_host_pattern("café.local:22").unwrap(), (vec!["café.local".to_string()], Some(22)));
        assert_eq!(hosts("w[1:2]:80"), ["w1", "w2"]);
        assert_eq!(port("w[1:2]:80"), Some(80));
        // Both port patterns apply in turn: the inner port wins.
        assert_eq!(parse_host_pattern("[1.2.3.4:5]:6").unwrap(), (vec!["1.2.3.4".to_string()], Some(5)));
        // Labels may not end in '_' or '-': not an address, so kept whole.
        assert_eq!(parse_host_pattern("h_:22").unwrap(), (vec!["h_:22".to_string()], None));
        assert_eq!(port("h:0"), Some(0));
        assert!(parse_host_pattern("h:65536").is_err());
    }

    #[test]
    fn ansible_range_errors() {
        let err = |p: &str| parse_host_pattern(p).unwrap_err();
        assert_eq!(err("h[z:a]"), "host range must have begin <= end");
        assert_eq!(err("h[a:3]"), "invalid literal for int() with base 10: 'a'");
        assert_eq!(err("h[1:2:3:4]"), "host range must be begin:end or begin:end:step");
        assert_eq!(err("h[1:]"), "host range must specify end value");
        assert_eq!(err("h[01:100]"), "host range must specify equal-length begin and end formats");
        assert_eq!(err("h[1:3:0]"), "range() arg 3 must not be zero");
        assert_eq!(err("r[1:2"), "not enough values to unpack (expected 3, got 2)");
        assert_eq!(err("a|b[1:2]"), "too many values to unpack (expected 3)");
        assert!(parse_host_pattern("h[0:99999999]").is_err());
    }

    #[test]
    fn ipv6_forms() {
        for ok in ["::", "1::", "::1", "1:2:3:4:5:6:7:8", "1::8", "2001:db8::[1:3]", "::ffff:[1:3].2.3.4"] {
            assert!(is_ipv6(ok), "{ok}");
        }
        for bad in ["1:2:3:4:5:6:7::", ":1", "1:::2", "12345::", "[0:g]::1", "1::2::3"] {
            assert!(!is_ipv6(bad), "{bad}");
        }
    }

    #[test]
    fn python_character_classes() {
        assert!(is_py_word('é') && is_py_word('_') && is_py_word('٣') && !is_py_word('-'));
        // Combining marks are alphabetic for Rust but not \w for Python.
        assert!(!is_py_word('\u{93e}') && '\u{93e}'.is_alphabetic());
        assert!(is_py_space('\u{1f}') && !'\u{1f}'.is_whitespace());
        assert_eq!(py_int(" +1_0\u{1f}"), Some(10));
        assert_eq!(py_int("1__0"), None);
        assert_eq!(py_repr("it's"), "\"it's\"");
    }
}
