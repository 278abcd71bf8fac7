//! A YAML loader that yields the values Ansible's own loader yields.
//!
//! Ansible reads inventories and vars files with PyYAML (libyaml parser, YAML
//! 1.1 implicit resolvers) wrapped in its `AnsibleLoader`, and before that it
//! tries `json.loads`. A generic YAML 1.2 library disagrees with that on many
//! everyday scalars (`yes`, `on`, `010`, `1:30`, `1e3`, `2001-12-14`, ...), so
//! importing through one would silently change what a host's variables mean.
//! This module keeps yaml-rust2 for the syntax only and re-implements, from
//! ansible-core 2.19 and PyYAML 6.0.4, everything that decides values: the
//! implicit resolvers, the scalar constructors, merge keys, the `!unsafe` and
//! `!vault` tags, and the JSON-first rule of `DataLoader.load`.
//!
//! Where Ansible's result is ambiguous (duplicate keys, conflicting merge
//! sources whose winner depends on the PyYAML version) or cannot be carried in
//! JSON (NaN, infinities, integers beyond 64 bits, recursive aliases), the
//! loader refuses with a [`ParseError`] at the line of the offending node.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use indexmap::IndexMap;
use serde_json::{Map, Value};
use yaml_rust2::parser::{Event, Parser, Tag as YamlTag};
use yaml_rust2::scanner::{Marker, ScanError, Scanner, TScalarStyle, Token, TokenType};

use super::builder::ParseError;
use crate::typed::{parse_timestamp, timestamp_iso};

/// Deeper nesting is refused rather than risking the stack: no real inventory
/// comes close, and yaml-rust2 stops at about this depth in flow style anyway.
const MAX_DEPTH: usize = 256;

const YAML_TAG_PREFIX: &str = "tag:yaml.org,2002:";

/// One loaded YAML (or JSON) value with the 1-based line where Ansible's
/// loader would say it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub line: usize,
    pub kind: NodeKind,
}

/// The Python values Ansible's loader can produce that Craton keeps.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A string Ansible will not template (`!unsafe`, or any string built
    /// inside an `!unsafe` collection). Still a `str` for Ansible.
    Unsafe(String),
    /// `!vault` / `!vault-encrypted`: the ciphertext, kept encrypted.
    Vault(String),
    /// A YAML timestamp: `iso` as Python's `isoformat()` prints it, `text`
    /// as written. Ansible keeps a `datetime.date`/`datetime`, not a `str`.
    Timestamp {
        iso: String,
        text: String,
    },
    Seq(Vec<Node>),
    /// Pairs in Python dict order (merged keys first, as PyYAML builds them).
    Map(Vec<(Node, Node)>),
}

impl Node {
    fn new(line: usize, kind: NodeKind) -> Node {
        Node { line, kind }
    }

    /// The text of a string node (trusted or `!unsafe`): what Python would
    /// accept where it checks `isinstance(x, str)`.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Str(s) | NodeKind::Unsafe(s) => Some(s),
            _ => None,
        }
    }

    /// The JSON Craton stores for this value: what `ansible-inventory --list`
    /// prints (inventory legacy profile; `!unsafe` strings as
    /// `{"__ansible_unsafe": ...}`, vaulted ones as `{"__ansible_vault": ...}`),
    /// except that timestamps and mappings with non-string keys are kept in
    /// the typed envelopes of [`crate::typed`], which script output turns
    /// into the `--list` form.
    pub fn to_json(&self) -> Result<Value, ParseError> {
        Ok(match &self.kind {
            NodeKind::Null => Value::Null,
            NodeKind::Bool(b) => Value::Bool(*b),
            NodeKind::Int(i) => Value::from(*i),
            NodeKind::Float(f) => match serde_json::Number::from_f64(*f) {
                Some(n) => Value::Number(n),
                None => {
                    return Err(ParseError::at(
                        self.line,
                        format!("float value {} cannot be represented in JSON", py_float_repr(*f)),
                    ))
                }
            },
            NodeKind::Str(s) => Value::String(s.clone()),
            NodeKind::Timestamp { text, .. } => crate::typed::timestamp(text),
            NodeKind::Unsafe(s) => wrapped("__ansible_unsafe", s),
            NodeKind::Vault(s) => wrapped("__ansible_vault", s),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect::<Result<_, _>>()?),
            NodeKind::Map(pairs) => {
                let mut map = Vec::with_capacity(pairs.len());
                // Where two keys turn into the same JSON key, json.dumps emits
                // both and the reader keeps one: refuse instead of guessing.
                let mut origin: HashMap<String, &Node> = HashMap::new();
                for (k, v) in pairs {
                    let key = json_key(k)?;
                    if let Some(first) = origin.get(&key) {
                        return Err(ParseError::at(
                            k.line,
                            format!(
                                "mapping keys {} (line {}) and {} both become the JSON key {:?}",
                                py_repr(first),
                                first.line,
                                py_repr(k),
                                key
                            ),
                        ));
                    }
                    origin.insert(key.clone(), k);
                    map.push((typed_key(k, key), v.to_json()?));
                }
                crate::typed::mapping(map)
            }
        })
    }

    /// Python's `type(x)` name, for messages that mirror Ansible's.
    pub fn py_type(&self) -> &'static str {
        match &self.kind {
            NodeKind::Null => "NoneType",
            NodeKind::Bool(_) => "bool",
            NodeKind::Int(_) => "int",
            NodeKind::Float(_) => "float",
            NodeKind::Str(_) | NodeKind::Unsafe(_) => "str",
            NodeKind::Vault(_) => "EncryptedString",
            NodeKind::Timestamp { iso, .. } if iso.contains('T') => "datetime.datetime",
            NodeKind::Timestamp { .. } => "datetime.date",
            NodeKind::Seq(_) => "list",
            NodeKind::Map(_) => "dict",
        }
    }

    /// Python's truth value (`if not data:`).
    pub fn is_truthy(&self) -> bool {
        match &self.kind {
            NodeKind::Null => false,
            NodeKind::Bool(b) => *b,
            NodeKind::Int(i) => *i != 0,
            NodeKind::Float(f) => *f != 0.0,
            NodeKind::Str(s) | NodeKind::Unsafe(s) | NodeKind::Vault(s) => !s.is_empty(),
            NodeKind::Timestamp { .. } => true,
            NodeKind::Seq(v) => !v.is_empty(),
            NodeKind::Map(v) => !v.is_empty(),
        }
    }

    /// The value under a string key of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            NodeKind::Map(pairs) => pairs.iter().find(|(k, _)| k.as_str() == Some(key)).map(|p| &p.1),
            _ => None,
        }
    }
}

fn wrapped(key: &str, s: &str) -> Value {
    let mut m = Map::new();
    m.insert(key.to_string(), Value::String(s.to_string()));
    Value::Object(m)
}

/// A mapping key as a `__craton_map` keeps it (given its `json_key`): the
/// scalar itself, except where JSON has no such number (NaN, infinities),
/// which stay the string Ansible's encoder prints.
fn typed_key(k: &Node, json_key: String) -> Value {
    match &k.kind {
        NodeKind::Null => Value::Null,
        NodeKind::Bool(b) => Value::Bool(*b),
        NodeKind::Int(i) => Value::from(*i),
        NodeKind::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::String(json_key), Value::Number),
        _ => Value::String(json_key),
    }
}

/// The JSON object key `json.dumps` makes of a mapping key: None, bools,
/// ints and floats become strings; anything else makes Ansible's encoder
/// raise, so it is an error here too.
pub fn json_key(k: &Node) -> Result<String, ParseError> {
    Ok(match &k.kind {
        NodeKind::Str(s) | NodeKind::Unsafe(s) => s.clone(),
        NodeKind::Null => "null".to_string(),
        NodeKind::Bool(b) => b.to_string(),
        NodeKind::Int(i) => i.to_string(),
        NodeKind::Float(f) if f.is_nan() => "NaN".to_string(),
        NodeKind::Float(f) if f.is_infinite() => if *f > 0.0 { "Infinity" } else { "-Infinity" }.to_string(),
        NodeKind::Float(f) => py_float_repr(*f),
        _ => return Err(ParseError::at(k.line, format!("a {} cannot be a mapping key in JSON", k.py_type()))),
    })
}

/// Python's `str(x)` of a scalar, for messages that quote a value.
pub fn py_str(n: &Node) -> String {
    match &n.kind {
        NodeKind::Null => "None".to_string(),
        NodeKind::Bool(true) => "True".to_string(),
        NodeKind::Bool(false) => "False".to_string(),
        NodeKind::Int(i) => i.to_string(),
        NodeKind::Float(f) => py_float_repr(*f),
        NodeKind::Str(s) | NodeKind::Unsafe(s) | NodeKind::Vault(s) => s.clone(),
        NodeKind::Timestamp { iso, .. } => iso.replacen('T', " ", 1),
        NodeKind::Seq(_) | NodeKind::Map(_) => py_repr(n),
    }
}

/// Python's `repr(x)` (strings quoted), roughly: for messages only.
pub fn py_repr(n: &Node) -> String {
    match &n.kind {
        NodeKind::Str(s) | NodeKind::Unsafe(s) => {
            format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
        }
        NodeKind::Seq(items) => {
            format!("[{}]", items.iter().map(py_repr).collect::<Vec<_>>().join(", "))
        }
        NodeKind::Map(pairs) => format!(
            "{{{}}}",
            pairs.iter().map(|(k, v)| format!("{}: {}", py_repr(k), py_repr(v))).collect::<Vec<_>>().join(", ")
        ),
        _ => py_str(n),
    }
}

pub use crate::typed::py_float_repr;

// ---------------------------------------------------------------------------
// Entry points

/// Loads one YAML document the way `yaml.load(text, Loader=AnsibleLoader)`
/// does. No document at all (empty input, only comments) gives `Ok(None)`.
pub fn load(text: &str) -> Result<Option<Node>, ParseError> {
    check_characters(text)?;
    // libyaml skips a leading byte order mark; yaml-rust2 does not.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut patched: Option<String> = None;
    let mut patches = 0;
    // yaml-rust2 refuses a tab between `:` and a plain scalar, which libyaml
    // takes as ordinary separation: put a space before such tabs and retry.
    // The line structure is untouched, so reported lines stay right.
    let events = loop {
        let current = patched.as_deref().unwrap_or(text);
        match collect_events(current) {
            Err(Failure::Scan(e)) if e.info() == "':' must be followed by a valid YAML whitespace" => {
                let chars: Vec<char> = current.chars().collect();
                let mut i = e.marker().index().min(chars.len());
                while i > 0 && matches!(chars[i - 1], '\t' | ' ') {
                    i -= 1;
                }
                patches += 1;
                if i == 0 || chars[i - 1] != ':' || patches > 100_000 {
                    return Err(scan_error(e));
                }
                let mut fixed: String = chars[..i].iter().collect();
                fixed.push(' ');
                fixed.extend(&chars[i..]);
                patched = Some(fixed);
            }
            Err(Failure::Scan(e)) if e.info().starts_with("invalid indentation") && patches < 100_000 => {
                let fixed = if e.info() == "invalid indentation in quoted scalar" {
                    indent_quoted_scalar(current, e.marker())
                } else {
                    indent_flow_line(current, e.marker())
                };
                let Some(fixed) = fixed else {
                    return Err(scan_error(e));
                };
                patches += 1;
                patched = Some(fixed);
            }
            Err(Failure::Scan(e)) => return Err(scan_error(e)),
            Err(Failure::Other(e)) => return Err(e),
            Ok(events) => break events,
        }
    };
    let text = patched.as_deref().unwrap_or(text);
    let chars: Vec<char> = text.chars().collect();
    let tokens: Vec<Token> = Scanner::new(text.chars()).collect();
    check_tokens(&tokens, &chars)?;
    let Some(events) = events else {
        return Ok(None);
    };
    let mut composer = Composer {
        events: &events,
        pos: 0,
        raw: Vec::new(),
        anchors: HashMap::new(),
        anchor_names: HashMap::new(),
        lines: LineFinder { tokens, cursor: 0, chars },
    };
    let root = composer.compose(0)?;
    let raw = composer.raw;
    let mut ctor = Constructor::new(&raw);
    ctor.compute_trust(root)?;
    ctor.construct(root).map(Some)
}

/// What Ansible's `DataLoader.load_from_file` gives for a vars or inventory
/// file, as a [`Node`]: vault-encrypted files are refused, then the text is
/// tried as JSON (with Ansible's `__ansible_unsafe` / `__ansible_vault`
/// object hook), and only if that fails as YAML.
pub fn load_data_node(text: &str) -> Result<Option<Node>, ParseError> {
    // Ansible's is_encrypted(): the raw header, and only for pure-ASCII data.
    if text.starts_with("$ANSIBLE_VAULT") && text.is_ascii() {
        return Err(ParseError::at(1, "vault-encrypted files are not supported yet"));
    }
    match json::parse(text)? {
        Some(node) => Ok(Some(node)),
        None => load(text),
    }
}

/// [`load_data_node`] converted to JSON with [`Node::to_json`].
pub fn load_data(text: &str) -> Result<Option<Value>, ParseError> {
    match load_data_node(text)? {
        Some(node) => node.to_json().map(Some),
        None => Ok(None),
    }
}

// ---------------------------------------------------------------------------
// Reading events

/// libyaml's reader refuses these before any parsing happens.
fn check_characters(text: &str) -> Result<(), ParseError> {
    let mut line = 1;
    for c in text.chars() {
        let v = c as u32;
        let printable = matches!(v, 0x09 | 0x0A | 0x0D | 0x20..=0x7E | 0x85 | 0xA0..=0xD7FF | 0xE000..=0xFFFD)
            || (0x10000..=0x10FFFF).contains(&v);
        if !printable {
            return Err(ParseError::at(
                line,
                format!("unacceptable character U+{v:04X}: control characters are not allowed in YAML"),
            ));
        }
        if matches!(v, 0x85 | 0x2028 | 0x2029) {
            return Err(ParseError::at(
                line,
                format!(
                    "character U+{v:04X} is a line break in Ansible's YAML 1.1 parser but not in Craton's; \
                     write it as an escape in a double-quoted string"
                ),
            ));
        }
        if c == '\n' {
            line += 1;
        }
    }
    Ok(())
}

/// Syntax libyaml refuses but yaml-rust2 (a YAML 1.2 parser) accepts.
fn check_tokens(tokens: &[Token], chars: &[char]) -> Result<(), ParseError> {
    enum Ctx {
        BlockMap { key_pending: bool },
        Block,
        Flow,
    }
    let mut in_document = false;
    let mut first = true;
    let mut stack: Vec<Ctx> = Vec::new();
    for Token(mark, tt) in tokens {
        let line = mark.line().max(1);
        match tt {
            TokenType::BlockMappingStart => stack.push(Ctx::BlockMap { key_pending: false }),
            TokenType::BlockSequenceStart => stack.push(Ctx::Block),
            TokenType::FlowMappingStart | TokenType::FlowSequenceStart => stack.push(Ctx::Flow),
            TokenType::BlockEnd | TokenType::FlowMappingEnd | TokenType::FlowSequenceEnd => {
                stack.pop();
            }
            TokenType::Key => {
                if let Some(Ctx::BlockMap { key_pending }) = stack.last_mut() {
                    *key_pending = true;
                }
            }
            // libyaml wants a key (possibly empty, after `?`) before every
            // `:` of a block mapping.
            TokenType::Value => {
                if let Some(Ctx::BlockMap { key_pending }) = stack.last_mut() {
                    if !*key_pending {
                        return Err(ParseError::at(line, "while parsing a block mapping: did not find expected key"));
                    }
                    *key_pending = false;
                }
            }
            // In flow context libyaml reads `?` and `:` as indicators and
            // `|`, `>` as errors; yaml-rust2 starts plain scalars with them.
            TokenType::Scalar(TScalarStyle::Plain, v)
                if v.starts_with(['|', '>'])
                    || (matches!(stack.last(), Some(Ctx::Flow)) && v.starts_with(['?', ':'])) =>
            {
                return Err(ParseError::at(
                    line,
                    format!("plain scalar {v:?} starts with an indicator Ansible's YAML parser reads differently"),
                ));
            }
            _ => {}
        }
        match tt {
            TokenType::StreamStart(_) => continue,
            TokenType::VersionDirective(major, minor) if *major != 1 || !(*minor == 1 || *minor == 2) => {
                return Err(ParseError::at(line, format!("found incompatible YAML document (%YAML {major}.{minor})")));
            }
            TokenType::DocumentEnd if first => {
                return Err(ParseError::at(line, "did not find expected node content before '...'"));
            }
            TokenType::DocumentStart if in_document => break,
            TokenType::DocumentStart => in_document = true,
            TokenType::Anchor(name) | TokenType::Alias(name)
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
            {
                return Err(ParseError::at(
                    line,
                    format!(
                        "anchor name {name:?} is not valid for Ansible's YAML parser \
                         (only letters, digits, '-' and '_')"
                    ),
                ));
            }
            TokenType::Tag(..) => {
                let mut i = mark.index();
                while chars.get(i).is_some_and(|c| !c.is_whitespace() && !"[]{},".contains(*c)) {
                    i += 1;
                }
                if chars.get(i).is_some_and(|c| "[]{}".contains(*c)) {
                    return Err(ParseError::at(
                        line,
                        "while scanning a tag: did not find expected whitespace or line break",
                    ));
                }
            }
            _ => {}
        }
        first = false;
        if !matches!(tt, TokenType::VersionDirective(..) | TokenType::TagDirective(..)) {
            in_document = true;
        }
    }
    Ok(())
}

/// yaml-rust2 wants the lines of a flow collection indented past the
/// enclosing block (YAML 1.2), and forgets to lift that rule after a quoted
/// scalar, so `x: {\n  "a": "b"\n}` fails; libyaml has no indentation rule
/// inside flow collections at all. When the scanner stops at a line start
/// inside a flow collection, this indents that line past the collection's
/// opening bracket (the most yaml-rust2 can require). Leading white space
/// between flow tokens, and on the continuation lines of multi-line
/// scalars, means nothing, and no line is added, so values and reported
/// lines stay those of the original text.
fn indent_flow_line(text: &str, at: &Marker) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let line_start = at.index().checked_sub(at.col())?;
    // The lines before: scanning stops cleanly at their end, so the scanner
    // hands out every token it would otherwise hold back for a simple key.
    let mut depth = 0usize;
    let mut opening_col = 0;
    for Token(mark, tt) in Scanner::new(chars[..line_start].iter().copied()) {
        match tt {
            TokenType::FlowMappingStart | TokenType::FlowSequenceStart => {
                if depth == 0 {
                    opening_col = mark.col();
                }
                depth += 1;
            }
            TokenType::FlowMappingEnd | TokenType::FlowSequenceEnd => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    let at_line_start = at.col() <= opening_col && chars[line_start..at.index()].iter().all(|&c| c == ' ');
    if depth == 0 || !at_line_start {
        return None;
    }
    let mut fixed: String = chars[..line_start].iter().collect();
    fixed.extend(std::iter::repeat_n(' ', opening_col + 1 - at.col()));
    fixed.extend(&chars[line_start..]);
    Some(fixed)
}

/// The same for the continuation lines of a multi-line quoted scalar
/// starting at `at`, which libyaml never checks for indentation (their
/// leading white space is folded away): each gets at least one column more
/// than the scalar's opening quote, which is past any indentation
/// yaml-rust2 can require there.
fn indent_quoted_scalar(text: &str, at: &Marker) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let quote = *chars.get(at.index())?;
    if quote != '"' && quote != '\'' {
        return None;
    }
    let mut end = at.index() + 1;
    loop {
        match (*chars.get(end)?, chars.get(end + 1)) {
            ('\\', Some(_)) if quote == '"' => end += 2,
            ('\'', Some('\'')) if quote == '\'' => end += 2,
            (c, _) if c == quote => break,
            _ => end += 1,
        }
    }
    let want = at.col() + 1;
    let mut fixed = String::with_capacity(text.len() + 64);
    fixed.extend(&chars[..at.index()]);
    let mut changed = false;
    let mut i = at.index();
    while i <= end {
        fixed.push(chars[i]);
        if chars[i] == '\n' {
            let spaces = chars[i + 1..].iter().take_while(|&&c| c == ' ').count();
            if spaces < want {
                fixed.extend(std::iter::repeat_n(' ', want - spaces));
                changed = true;
            }
        }
        i += 1;
    }
    fixed.extend(&chars[end + 1..]);
    changed.then_some(fixed)
}

enum Failure {
    Scan(ScanError),
    Other(ParseError),
}

fn scan_error(e: ScanError) -> ParseError {
    let m = e.marker();
    ParseError::at(m.line().max(1), format!("YAML syntax error: {} (column {})", e.info(), m.col() + 1))
}

/// The events of the single document, or `None` for an empty stream. A
/// second document is an error, as in PyYAML's `get_single_node`.
fn collect_events(text: &str) -> Result<Option<Vec<(Event, Marker)>>, Failure> {
    let mut parser = Parser::new_from_str(text);
    let mut events = Vec::new();
    let mut in_document = false;
    let mut seen_document = false;
    loop {
        let (ev, mark) = parser.next_token().map_err(Failure::Scan)?;
        match ev {
            Event::StreamStart | Event::Nothing => {}
            Event::StreamEnd => break,
            Event::DocumentStart => {
                if seen_document {
                    return Err(Failure::Other(ParseError::at(
                        mark.line().max(1),
                        "expected a single document in the stream, but found another document \
                         (Ansible refuses multi-document YAML)",
                    )));
                }
                in_document = true;
                seen_document = true;
            }
            Event::DocumentEnd => in_document = false,
            ev => {
                if in_document {
                    events.push((ev, mark));
                }
            }
        }
    }
    Ok(if seen_document { Some(events) } else { None })
}

// ---------------------------------------------------------------------------
// Line numbers

/// Recovers the start line libyaml reports for a node. yaml-rust2 marks a
/// node at its content, but Ansible's origin is the start of the node's
/// properties (`&anchor`, `!tag`) or of a block scalar's `|`/`>` indicator,
/// so the scanner's tokens are replayed alongside the events to find them.
struct LineFinder {
    tokens: Vec<Token>,
    cursor: usize,
    chars: Vec<char>,
}

struct NodeStart {
    line: usize,
    anchor: Option<String>,
    /// For a block scalar: what its header and position say.
    block: Option<BlockHeader>,
}

impl LineFinder {
    /// The first token from the cursor on at char `index` that `want`s. Only
    /// indicators and block ends can sit between two nodes, so the search
    /// is bounded: a miss costs a fallback line, never quadratic time.
    fn find(&self, index: usize, want: impl Fn(&TokenType) -> bool) -> Option<usize> {
        let end = self.tokens.len().min(self.cursor + 2 * MAX_DEPTH + 16);
        (self.cursor..end).find(|&p| self.tokens[p].0.index() == index && want(&self.tokens[p].1))
    }

    /// The anchor/tag tokens right before token `pos`: (first line, anchor).
    fn properties(&self, pos: usize) -> (Option<usize>, Option<String>) {
        let mut line = None;
        let mut anchor = None;
        let mut p = pos;
        while p > 0 && pos - p < 2 {
            p -= 1;
            match &self.tokens[p] {
                Token(m, TokenType::Anchor(name)) => {
                    anchor = Some(name.clone());
                    line = Some(m.line());
                }
                Token(m, TokenType::Tag(..)) => line = Some(m.line()),
                _ => break,
            }
        }
        (line, anchor)
    }

    fn start(&mut self, ev: &Event, mark: &Marker) -> NodeStart {
        let fallback = NodeStart { line: mark.line().max(1), anchor: None, block: None };
        let synthetic_empty = matches!(ev, Event::Scalar(v, TScalarStyle::Plain, _, _) if v.is_empty());
        if synthetic_empty {
            // yaml-rust2 marks an empty scalar at the token after it; libyaml
            // at its properties or else at the indicator before it.
            let Some(pos) = self.find(mark.index(), |_| true) else {
                return fallback;
            };
            let (pline, anchor) = self.properties(pos);
            let line = match pline {
                Some(l) => l,
                None if pos > 0 => self.tokens[pos - 1].0.line(),
                None => mark.line(),
            };
            return NodeStart { line: line.max(1), anchor, block: None };
        }
        let pos = match ev {
            Event::Scalar(..) => self.find(mark.index(), |t| matches!(t, TokenType::Scalar(..))),
            Event::SequenceStart(..) => self.find(mark.index(), |t| {
                matches!(t, TokenType::BlockSequenceStart | TokenType::FlowSequenceStart | TokenType::BlockEntry)
            }),
            Event::MappingStart(..) => {
                self.find(mark.index(), |t| matches!(t, TokenType::BlockMappingStart | TokenType::FlowMappingStart))
            }
            _ => None,
        };
        let Some(pos) = pos else {
            return fallback;
        };
        self.cursor = pos + 1;
        let (pline, anchor) = self.properties(pos);
        let indicator = match ev {
            Event::Scalar(_, TScalarStyle::Literal | TScalarStyle::Folded, _, _) => self.block_indicator(pos),
            _ => None,
        };
        let line = match (pline, indicator) {
            (Some(l), _) => l,
            (None, Some((_, l))) => l,
            (None, None) => mark.line(),
        };
        let block = indicator.map(|(i, _)| self.block_header(i, pos));
        NodeStart { line: line.max(1), anchor, block }
    }

    /// The `|`/`>` that opens the block scalar at token `pos`, as (char
    /// index, line): the first thing after the preceding token that is not
    /// white space or a comment.
    fn block_indicator(&self, pos: usize) -> Option<(usize, usize)> {
        let Token(prev_mark, _) = self.tokens.get(pos.checked_sub(1)?)?;
        let end = self.tokens[pos].0.index().max(prev_mark.index());
        let mut i = prev_mark.index();
        let mut line = prev_mark.line();
        // The preceding token's own text: `:`, `?`, `---`, `&name`, `!tag`.
        // (yaml-rust2 marks a `-` entry after its blank, so none to skip.)
        if matches!(self.chars.get(i), Some(':' | '?' | '-' | '&' | '!')) {
            while i < end && !self.chars.get(i)?.is_whitespace() {
                i += 1;
            }
        }
        while i <= end {
            match *self.chars.get(i)? {
                '\n' => line += 1,
                ' ' | '\t' | '\r' => {}
                '#' => {
                    while i < end && *self.chars.get(i)? != '\n' {
                        i += 1;
                    }
                    continue;
                }
                '|' | '>' => return Some((i, line)),
                _ => return None,
            }
            i += 1;
        }
        None
    }

    fn block_header(&self, indicator: usize, pos: usize) -> BlockHeader {
        let mut chomp = ' ';
        let mut explicit = None;
        let mut i = indicator + 1;
        while let Some(&c) = self.chars.get(i) {
            match c {
                '+' | '-' => chomp = c,
                '1'..='9' => explicit = c.to_digit(10),
                _ => break,
            }
            i += 1;
        }
        let newline = self.chars[i.min(self.chars.len())..].iter().position(|&c| c == '\n');
        let more_lines = newline.map(|n| self.chars[i + n + 1..].contains(&'\n')).unwrap_or(false);
        let last_scalar = self.tokens[pos + 1..]
            .iter()
            .all(|t| matches!(t.1, TokenType::BlockEnd | TokenType::DocumentEnd | TokenType::StreamEnd));
        let ends_unterminated = last_scalar
            && newline.is_some()
            && self.chars.last().is_some_and(|&c| c != '\n')
            && self.tail_in_block(i + newline.unwrap_or(0) + 1, indicator, explicit);
        BlockHeader { chomp, more_lines, ends_unterminated }
    }

    /// Whether the input's last line (which has no line break) belongs to
    /// the block scalar whose content starts at char `body`: blank lines
    /// and lines indented at least as far as the content do; a comment
    /// further left ends the scalar before it.
    fn tail_in_block(&self, body: usize, indicator: usize, explicit: Option<u32>) -> bool {
        let tail_start = self.chars.iter().rposition(|&c| c == '\n').map_or(0, |n| n + 1);
        let tail = &self.chars[tail_start..];
        let indent_of = |line: &[char]| line.iter().take_while(|&&c| c == ' ').count();
        if tail.iter().all(|c| c.is_whitespace()) {
            return true;
        }
        let content_indent = match explicit {
            Some(d) => {
                let line_start = self.chars[..indicator].iter().rposition(|&c| c == '\n').map_or(0, |n| n + 1);
                indent_of(&self.chars[line_start..]) + d as usize
            }
            None => self.chars[body.min(self.chars.len())..]
                .split(|&c| c == '\n')
                .find(|l| !l.iter().all(|c| c.is_whitespace()))
                .map_or(usize::MAX, indent_of),
        };
        indent_of(tail) >= content_indent
    }
}

/// What a block scalar's header and position say about its value.
#[derive(Debug, Clone, Copy)]
struct BlockHeader {
    /// The chomping indicator: `+`, `-`, or `' '` for clip.
    chomp: char,
    /// Anything follows the header line.
    more_lines: bool,
    /// The scalar runs to the end of an input whose last line has no line
    /// break: libyaml adds none, yaml-rust2 adds one.
    ends_unterminated: bool,
}

/// libyaml's value of a block scalar, from yaml-rust2's.
fn fix_block(value: &mut String, block: Option<BlockHeader>) {
    let Some(h) = block else {
        return;
    };
    if h.ends_unterminated && h.chomp != '-' && value.ends_with('\n') {
        value.pop();
    }
    fix_empty_block(value, (h.chomp, h.more_lines));
}

/// yaml-rust2 gives a block scalar with no content a line break it should
/// not have (at the end of the input): libyaml yields "" for clip and strip
/// chomping, and for keep only the blank lines that really follow.
fn fix_empty_block(value: &mut String, (chomp, more_lines): (char, bool)) {
    if value.is_empty() || !value.chars().all(|c| c == '\n') {
        return;
    }
    if chomp != '+' || (value == "\n" && !more_lines) {
        value.clear();
    }
}

// ---------------------------------------------------------------------------
// Composing: the node graph PyYAML's composer builds (aliases share nodes)

#[derive(Debug)]
enum RawKind {
    Scalar { value: String, plain: bool },
    Seq(Vec<usize>),
    Map(Vec<(usize, usize)>),
}

#[derive(Debug)]
struct Raw {
    line: usize,
    /// Has an anchor, so aliases may share it: its value is memoised.
    anchored: bool,
    /// Full tag: `!` (non-specific), `!unsafe`, `tag:yaml.org,2002:int`, ...
    tag: Option<String>,
    kind: RawKind,
}

struct Composer<'a> {
    events: &'a [(Event, Marker)],
    pos: usize,
    raw: Vec<Raw>,
    /// yaml-rust2 anchor id -> node.
    anchors: HashMap<usize, usize>,
    /// Anchor name -> line of its definition, for duplicate detection.
    anchor_names: HashMap<String, usize>,
    lines: LineFinder,
}

fn full_tag(tag: &Option<YamlTag>) -> Option<String> {
    tag.as_ref().map(|t| {
        if t.handle.is_empty() && t.suffix == "!" {
            "!".to_string()
        } else {
            format!("{}{}", t.handle, t.suffix)
        }
    })
}

impl Composer<'_> {
    fn compose(&mut self, depth: usize) -> Result<usize, ParseError> {
        let Some((ev, mark)) = self.events.get(self.pos) else {
            return Err(ParseError::new(None, "unexpected end of YAML events"));
        };
        self.pos += 1;
        if depth > MAX_DEPTH {
            return Err(ParseError::at(mark.line().max(1), format!("YAML nested deeper than {MAX_DEPTH} levels")));
        }
        if let Event::Alias(id) = ev {
            return self
                .anchors
                .get(id)
                .copied()
                .ok_or_else(|| ParseError::at(mark.line().max(1), "found undefined alias"));
        }
        let start = self.lines.start(ev, mark);
        let (anchor_id, tag) = match ev {
            Event::Scalar(_, _, a, t) | Event::SequenceStart(a, t) | Event::MappingStart(a, t) => (*a, full_tag(t)),
            _ => {
                return Err(ParseError::at(start.line, format!("unexpected YAML event {ev:?}")));
            }
        };
        if anchor_id > 0 {
            if let Some(name) = &start.anchor {
                if let Some(first) = self.anchor_names.get(name) {
                    return Err(ParseError::at(
                        start.line,
                        format!("found duplicate anchor '{name}'; first occurrence at line {first}"),
                    ));
                }
                self.anchor_names.insert(name.clone(), start.line);
            }
        }
        let id = self.raw.len();
        let kind = match ev {
            Event::Scalar(value, style, _, _) => {
                let mut value = value.clone();
                fix_block(&mut value, start.block);
                RawKind::Scalar { value, plain: *style == TScalarStyle::Plain }
            }
            Event::SequenceStart(..) => RawKind::Seq(Vec::new()),
            _ => RawKind::Map(Vec::new()),
        };
        let is_scalar = matches!(kind, RawKind::Scalar { .. });
        self.raw.push(Raw { line: start.line, anchored: anchor_id > 0, tag, kind });
        // Registered before the children so a self-reference resolves (and is
        // later refused as recursive) exactly as in PyYAML's composer.
        if anchor_id > 0 {
            self.anchors.insert(anchor_id, id);
        }
        if is_scalar {
            return Ok(id);
        }
        let mut children = Vec::new();
        loop {
            match self.events.get(self.pos) {
                Some((Event::SequenceEnd | Event::MappingEnd, _)) => {
                    self.pos += 1;
                    break;
                }
                Some(_) => children.push(self.compose(depth + 1)?),
                None => return Err(ParseError::at(start.line, "unterminated YAML collection")),
            }
        }
        let line = self.raw[id].line;
        self.raw[id].kind = match &self.raw[id].kind {
            RawKind::Seq(_) => RawKind::Seq(children),
            _ => {
                if children.len() % 2 != 0 {
                    return Err(ParseError::at(line, "mapping with a key but no value"));
                }
                RawKind::Map(children.chunks(2).map(|c| (c[0], c[1])).collect())
            }
        };
        Ok(id)
    }
}

// ---------------------------------------------------------------------------
// Resolving: PyYAML's YAML 1.1 implicit resolvers

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Null,
    Bool,
    Int,
    Float,
    Str,
    Timestamp,
    Merge,
    Value,
    Seq,
    Map,
}

/// `BaseResolver.resolve` for a plain scalar. Resolvers are picked by the
/// first character, and Python's `$` also matches before one final newline,
/// which only matters for `!unsafe`/`!` re-resolution of quoted text.
fn resolve_plain(v: &str) -> Tag {
    let Some(first) = v.chars().next() else {
        return Tag::Null;
    };
    let m = v.strip_suffix('\n').unwrap_or(v);
    if "yYnNtTfFoO".contains(first) && is_bool(m) {
        return Tag::Bool;
    }
    if "-+0123456789.".contains(first) && is_float(m.as_bytes()) {
        return Tag::Float;
    }
    if "-+0123456789".contains(first) && is_int(m.as_bytes()) {
        return Tag::Int;
    }
    if first == '<' && m == "<<" {
        return Tag::Merge;
    }
    if "~nN".contains(first) && matches!(m, "~" | "null" | "Null" | "NULL") {
        return Tag::Null;
    }
    if first.is_ascii_digit() {
        if let Some(ts) = parse_timestamp(m) {
            if ts.hour.is_some() || (ts.month.len() == 2 && ts.day.len() == 2) {
                return Tag::Timestamp;
            }
        }
    }
    if first == '=' && m == "=" {
        return Tag::Value;
    }
    Tag::Str
}

fn is_bool(m: &str) -> bool {
    matches!(
        m,
        "yes"
            | "Yes"
            | "YES"
            | "no"
            | "No"
            | "NO"
            | "true"
            | "True"
            | "TRUE"
            | "false"
            | "False"
            | "FALSE"
            | "on"
            | "On"
            | "ON"
            | "off"
            | "Off"
            | "OFF"
    )
}

fn skip_while(b: &[u8], mut i: usize, f: impl Fn(u8) -> bool) -> usize {
    while i < b.len() && f(b[i]) {
        i += 1;
    }
    i
}

fn digit_or_us(c: u8) -> bool {
    c.is_ascii_digit() || c == b'_'
}

fn skip_sign(b: &[u8]) -> usize {
    usize::from(matches!(b.first(), Some(b'-' | b'+')))
}

/// `(?:[eE][-+][0-9]+)?` — returns the position after it (or `i`).
fn opt_exponent(b: &[u8], i: usize) -> usize {
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') && i + 1 < b.len() && matches!(b[i + 1], b'-' | b'+') {
        let j = skip_while(b, i + 2, |c| c.is_ascii_digit());
        if j > i + 2 {
            return j;
        }
    }
    i
}

/// `(?::[0-5]?[0-9])+`, at least one segment.
fn sexagesimal_tail(b: &[u8], mut i: usize) -> Option<usize> {
    let mut n = 0;
    while i < b.len() && b[i] == b':' {
        let d1 = b.get(i + 1).copied().filter(u8::is_ascii_digit)?;
        match b.get(i + 2) {
            Some(d2) if d2.is_ascii_digit() && d1 <= b'5' => i += 3,
            _ => i += 2,
        }
        n += 1;
    }
    (n > 0).then_some(i)
}

fn is_float(b: &[u8]) -> bool {
    let s = skip_sign(b);
    // [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
    if b.get(s).is_some_and(u8::is_ascii_digit) {
        let i = skip_while(b, s + 1, digit_or_us);
        if b.get(i) == Some(&b'.') {
            let j = skip_while(b, i + 1, digit_or_us);
            if opt_exponent(b, j) == b.len() {
                return true;
            }
        }
        // [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
        if let Some(j) = sexagesimal_tail(b, i) {
            if b.get(j) == Some(&b'.') && skip_while(b, j + 1, digit_or_us) == b.len() {
                return true;
            }
        }
    }
    // \.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
    if b.first() == Some(&b'.') && b.get(1).is_some_and(u8::is_ascii_digit) {
        let i = skip_while(b, 2, digit_or_us);
        if opt_exponent(b, i) == b.len() {
            return true;
        }
    }
    let rest = &b[s..];
    matches!(rest, b".inf" | b".Inf" | b".INF") || matches!(b, b".nan" | b".NaN" | b".NAN")
}

fn is_int(b: &[u8]) -> bool {
    let s = skip_sign(b);
    let r = &b[s..];
    if r.len() > 2 && r.starts_with(b"0b") {
        return r[2..].iter().all(|c| matches!(c, b'0' | b'1' | b'_'));
    }
    if r.len() > 2 && r.starts_with(b"0x") {
        return r[2..].iter().all(|c| c.is_ascii_hexdigit() || *c == b'_');
    }
    if r == b"0" {
        return true;
    }
    if r.len() > 1 && r[0] == b'0' {
        return r[1..].iter().all(|c| matches!(c, b'0'..=b'7' | b'_'));
    }
    if r.first().is_some_and(|c| matches!(c, b'1'..=b'9')) {
        let i = skip_while(r, 1, digit_or_us);
        if i == r.len() {
            return true;
        }
        return sexagesimal_tail(r, i) == Some(r.len());
    }
    false
}

// ---------------------------------------------------------------------------
// Python's int() and float() as PyYAML's constructors use them

fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c))
}

/// `int(s, base)`: surrounding white space, a sign, and the base's prefix
/// are allowed. Values are kept in i128 and range-checked by the caller.
fn py_int(s: &str, base: u32) -> Result<i128, String> {
    let bad = || format!("invalid literal for int() with base {base}: {s:?}");
    let t = py_strip(s);
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let prefix = match base {
        2 => Some("0b"),
        8 => Some("0o"),
        16 => Some("0x"),
        _ => None,
    };
    let t = match prefix {
        Some(p) if t.len() > 2 && t.get(..2).is_some_and(|h| h.eq_ignore_ascii_case(p)) => &t[2..],
        _ => t,
    };
    if t.is_empty() {
        return Err(bad());
    }
    let mut v: i128 = 0;
    for c in t.chars() {
        let d = c.to_digit(base).ok_or_else(bad)?;
        v = v
            .checked_mul(base as i128)
            .and_then(|v| v.checked_add(d as i128))
            .ok_or_else(|| format!("integer {s:?} is far too large"))?;
    }
    Ok(if neg { -v } else { v })
}

fn py_float(s: &str) -> Result<f64, String> {
    let t = py_strip(s);
    let ok = !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-'));
    ok.then(|| t.parse::<f64>().ok()).flatten().ok_or_else(|| format!("could not convert string to float: {s:?}"))
}

/// `SafeConstructor.construct_yaml_int`.
fn construct_int(value: &str) -> Result<i128, String> {
    let v = value.replace('_', "");
    let first = v.chars().next().ok_or("string index out of range")?;
    let sign: i128 = if first == '-' { -1 } else { 1 };
    let body = if first == '-' || first == '+' { &v[1..] } else { &v[..] };
    let out = if body == "0" {
        0
    } else if let Some(r) = body.strip_prefix("0b") {
        py_int(r, 2)?
    } else if let Some(r) = body.strip_prefix("0x") {
        py_int(r, 16)?
    } else if body.starts_with('0') {
        py_int(body, 8)?
    } else if body.is_empty() {
        return Err("string index out of range".to_string());
    } else if body.contains(':') {
        let mut value: i128 = 0;
        let mut base: i128 = 1;
        for part in body.split(':').rev() {
            let d = py_int(part, 10)?;
            value =
                d.checked_mul(base).and_then(|x| x.checked_add(value)).ok_or("sexagesimal integer is far too large")?;
            base = base.saturating_mul(60);
        }
        value
    } else {
        py_int(body, 10)?
    };
    out.checked_mul(sign).ok_or_else(|| "integer is far too large".to_string())
}

/// `SafeConstructor.construct_yaml_float`.
fn construct_float(value: &str) -> Result<f64, String> {
    let v = value.replace('_', "").to_lowercase();
    let first = v.chars().next().ok_or("string index out of range")?;
    let sign = if first == '-' { -1.0 } else { 1.0 };
    let body = if first == '-' || first == '+' { &v[1..] } else { &v[..] };
    if body == ".inf" {
        return Ok(sign * f64::INFINITY);
    }
    if body == ".nan" {
        return Ok(f64::NAN);
    }
    if body.contains(':') {
        let mut value = 0.0f64;
        let mut base: u128 = 1;
        for part in body.split(':').rev() {
            let d = py_float(part)?;
            value += d * base as f64;
            base = base.saturating_mul(60);
        }
        return Ok(sign * value);
    }
    Ok(sign * py_float(body)?)
}

// ---------------------------------------------------------------------------
// Constructing: SafeConstructor + AnsibleConstructor

/// Python's equality classes for hashable keys: `True == 1 == 1.0`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum PyKey {
    None,
    Int(i128),
    FloatBits(u64),
    /// NaN is unequal to itself, so only the very same node is a duplicate.
    NaN(usize),
    Str(String),
    Timestamp(String),
    Vault(String),
}

fn py_key(n: &Node, id: usize) -> Option<PyKey> {
    Some(match &n.kind {
        NodeKind::Null => PyKey::None,
        NodeKind::Bool(b) => PyKey::Int(*b as i128),
        NodeKind::Int(i) => PyKey::Int(*i as i128),
        NodeKind::Float(f) if f.is_nan() => PyKey::NaN(id),
        NodeKind::Float(f) if f.fract() == 0.0 && f.abs() < 1e38 => PyKey::Int(*f as i128),
        NodeKind::Float(f) => PyKey::FloatBits(f.to_bits()),
        NodeKind::Str(s) | NodeKind::Unsafe(s) => PyKey::Str(s.clone()),
        NodeKind::Timestamp { iso, .. } => PyKey::Timestamp(iso.clone()),
        NodeKind::Vault(s) => PyKey::Vault(s.clone()),
        NodeKind::Seq(_) | NodeKind::Map(_) => return None,
    })
}

/// Structural equality that also tells 1 from 1.0 and trusted from unsafe
/// text: two values are "the same" only if Craton would store the same JSON.
fn same_value(a: &Node, b: &Node) -> bool {
    match (&a.kind, &b.kind) {
        (NodeKind::Float(x), NodeKind::Float(y)) => x.to_bits() == y.to_bits(),
        (NodeKind::Seq(x), NodeKind::Seq(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(p, q)),
        (NodeKind::Map(x), NodeKind::Map(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((k1, v1), (k2, v2))| same_value(k1, k2) && same_value(v1, v2))
        }
        (x, y) => x == y,
    }
}

/// How `<<` merges are flattened. PyYAML 6.0.4 (what ansible-core 2.19
/// ships with) appends the sources in order and skips a pair whose key
/// *string object* was already merged (`id(key_node.value)`): the same node
/// reached twice, or — since CPython shares one object per single Latin-1
/// character — any one-letter key. So later sources win for longer keys and
/// earlier ones for one-letter keys. Earlier PyYAML releases let the earlier
/// source win throughout. Only results both agree on are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum MergeMode {
    Classic,
    Pyyaml604,
}

const MERGE_MODES: [MergeMode; 2] = [MergeMode::Pyyaml604, MergeMode::Classic];

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum KeyIdentity {
    Node(usize),
    Text(String),
}

type Pairs = Rc<Vec<(usize, usize)>>;

struct Constructor<'a> {
    raw: &'a [Raw],
    /// Values of anchored nodes with their sizes: PyYAML builds each node
    /// once, so an alias sees whatever its anchor's first construction gave.
    memo: Vec<Option<(Node, usize)>>,
    produced: usize,
    budget: usize,
    busy: Vec<bool>,
    flat_memo: HashMap<(usize, MergeMode), Pairs>,
    flat_busy: HashSet<(usize, MergeMode)>,
    dups_checked: Vec<bool>,
    /// Strings Ansible will not trust, per node: see `compute_trust`.
    untrusted: Vec<bool>,
    depth: usize,
}

fn node_count(n: &Node) -> usize {
    1 + match &n.kind {
        NodeKind::Seq(items) => items.iter().map(node_count).sum(),
        NodeKind::Map(pairs) => pairs.iter().map(|(k, v)| node_count(k) + node_count(v)).sum(),
        _ => 0,
    }
}

fn kind_name(k: &RawKind) -> &'static str {
    match k {
        RawKind::Scalar { .. } => "scalar",
        RawKind::Seq(_) => "sequence",
        RawKind::Map(_) => "mapping",
    }
}

fn display_tag(tag: &str) -> String {
    match tag.strip_prefix(YAML_TAG_PREFIX) {
        Some(s) => format!("!!{s}"),
        None => tag.to_string(),
    }
}

impl<'a> Constructor<'a> {
    fn new(raw: &'a [Raw]) -> Self {
        Constructor {
            raw,
            memo: vec![None; raw.len()],
            produced: 0,
            budget: 1_000_000 + 100 * raw.len(),
            busy: vec![false; raw.len()],
            flat_memo: HashMap::new(),
            flat_busy: HashSet::new(),
            dups_checked: vec![false; raw.len()],
            untrusted: vec![false; raw.len()],
            depth: 0,
        }
    }

    /// Decides which string nodes are untrusted by replaying the order in
    /// which PyYAML first constructs each node. A node is built once and
    /// reused by every alias, so its strings are untrusted exactly when its
    /// first construction ran inside an `!unsafe` tag. PyYAML builds scalars
    /// at once but defers collections to a FIFO queue, except inside
    /// `!unsafe`/`!vault`, which build their whole subtree immediately.
    fn compute_trust(&mut self, root: usize) -> Result<(), ParseError> {
        let mut visited = vec![false; self.raw.len()];
        let mut queue: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
        self.visit_trust(root, false, false, &mut visited, &mut queue)?;
        while let Some(id) = queue.pop_front() {
            self.visit_children(id, false, false, &mut visited, &mut queue)?;
        }
        Ok(())
    }

    fn visit_trust(
        &mut self,
        id: usize,
        unsafe_: bool,
        deep: bool,
        visited: &mut [bool],
        queue: &mut std::collections::VecDeque<usize>,
    ) -> Result<(), ParseError> {
        if visited[id] {
            return Ok(());
        }
        visited[id] = true;
        let (unsafe_, deep) = match self.raw[id].tag.as_deref() {
            Some("!unsafe") => (true, true),
            Some("!vault" | "!vault-encrypted") => (unsafe_, true),
            _ => (unsafe_, deep),
        };
        self.untrusted[id] = unsafe_;
        match &self.raw[id].kind {
            RawKind::Scalar { .. } => Ok(()),
            _ if deep => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(self.err(id, format!("YAML nested deeper than {MAX_DEPTH} levels")));
                }
                let r = self.visit_children(id, unsafe_, true, visited, queue);
                self.depth -= 1;
                r
            }
            _ => {
                queue.push_back(id);
                Ok(())
            }
        }
    }

    fn visit_children(
        &mut self,
        id: usize,
        unsafe_: bool,
        deep: bool,
        visited: &mut [bool],
        queue: &mut std::collections::VecDeque<usize>,
    ) -> Result<(), ParseError> {
        let raw = self.raw;
        match &raw[id].kind {
            RawKind::Seq(items) => {
                for &item in items {
                    self.visit_trust(item, unsafe_, deep, visited, queue)?;
                }
            }
            RawKind::Map(pairs) => {
                let pairs: Pairs = if pairs.iter().any(|&(k, _)| self.is_merge_key(k)) {
                    self.flatten(id, MergeMode::Pyyaml604)?
                } else {
                    Rc::new(pairs.clone())
                };
                for &(k, v) in pairs.iter() {
                    self.visit_trust(k, unsafe_, deep, visited, queue)?;
                    self.visit_trust(v, unsafe_, deep, visited, queue)?;
                }
            }
            RawKind::Scalar { .. } => {}
        }
        Ok(())
    }

    fn err(&self, id: usize, msg: impl Into<String>) -> ParseError {
        ParseError::at(self.raw[id].line, msg)
    }

    /// The tag the composer gives a node: plain scalars (and the `!`
    /// non-specific tag on anything) are resolved implicitly.
    fn node_tag(&self, id: usize) -> Result<Tag, &'a str> {
        let r = &self.raw[id];
        let implicit = |plain_rules: bool| match &r.kind {
            RawKind::Scalar { value, plain } => {
                if *plain || plain_rules {
                    resolve_plain(value)
                } else {
                    Tag::Str
                }
            }
            RawKind::Seq(_) => Tag::Seq,
            RawKind::Map(_) => Tag::Map,
        };
        match r.tag.as_deref() {
            None => Ok(implicit(false)),
            // libyaml marks a `!`-tagged scalar plain-implicit whatever its style.
            Some("!") => Ok(implicit(true)),
            Some(t) => match t.strip_prefix(YAML_TAG_PREFIX) {
                Some("null") => Ok(Tag::Null),
                Some("bool") => Ok(Tag::Bool),
                Some("int") => Ok(Tag::Int),
                Some("float") => Ok(Tag::Float),
                Some("str" | "python/unicode") => Ok(Tag::Str),
                Some("timestamp") => Ok(Tag::Timestamp),
                Some("merge") => Ok(Tag::Merge),
                Some("value") => Ok(Tag::Value),
                Some("seq") => Ok(Tag::Seq),
                Some("map" | "python/dict") => Ok(Tag::Map),
                _ => Err(t),
            },
        }
    }

    /// `_resolve_and_construct_object`: the tag Ansible re-resolves for a
    /// `!unsafe`/`!vault` node, as if it were plain whatever its style.
    fn reresolved_tag(&self, id: usize) -> Tag {
        match &self.raw[id].kind {
            RawKind::Scalar { value, .. } => resolve_plain(value),
            RawKind::Seq(_) => Tag::Seq,
            RawKind::Map(_) => Tag::Map,
        }
    }

    fn construct(&mut self, id: usize) -> Result<Node, ParseError> {
        if let Some((n, size)) = &self.memo[id] {
            // Every alias copies its target: bound the total against
            // "billion laughs" documents.
            self.produced += size;
            if self.produced > self.budget {
                return Err(
                    self.err(id, "aliases expand this document to too many values (more than the import allows)")
                );
            }
            return Ok(n.clone());
        }
        if self.busy[id] {
            return Err(self.err(id, "recursive alias: this node contains itself, which JSON cannot express"));
        }
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(id, format!("YAML nested deeper than {MAX_DEPTH} levels")));
        }
        self.busy[id] = true;
        let result = self.construct_uncached(id);
        self.busy[id] = false;
        self.depth -= 1;
        let node = result?;
        self.produced += 1;
        if self.raw[id].anchored {
            let size = node_count(&node);
            self.memo[id] = Some((node.clone(), size));
        }
        Ok(node)
    }

    fn construct_uncached(&mut self, id: usize) -> Result<Node, ParseError> {
        let raw = self.raw;
        let r = &raw[id];
        match r.tag.as_deref() {
            Some("!unsafe") => {
                let tag = self.reresolved_tag(id);
                self.construct_as(id, tag)
            }
            Some(t @ ("!vault" | "!vault-encrypted")) => {
                let tag = self.reresolved_tag(id);
                let n = self.construct_as(id, tag)?;
                match n.kind {
                    NodeKind::Str(s) | NodeKind::Unsafe(s) => Ok(Node::new(r.line, NodeKind::Vault(s))),
                    _ => Err(self.err(id, format!("the '{t}' tag requires a string value"))),
                }
            }
            _ => match self.node_tag(id) {
                Ok(tag) => self.construct_as(id, tag),
                Err(t) => {
                    let name = display_tag(t);
                    let msg = match t.strip_prefix(YAML_TAG_PREFIX) {
                        Some("binary" | "set" | "omap" | "pairs") => format!(
                            "the YAML tag {name} is not supported: Ansible cannot print its value as JSON \
                             (or orders it at random)"
                        ),
                        _ => format!(
                            "unknown YAML tag '{name}': could not determine a constructor for it \
                             (Ansible knows !unsafe, !vault and the standard !! tags)"
                        ),
                    };
                    Err(self.err(id, msg))
                }
            },
        }
    }

    fn scalar_text(&self, id: usize) -> Result<&'a str, ParseError> {
        let raw = self.raw;
        match &raw[id].kind {
            RawKind::Scalar { value, .. } => Ok(value),
            k => Err(self.err(id, format!("expected a scalar node, but found {}", kind_name(k)))),
        }
    }

    fn construct_as(&mut self, id: usize, tag: Tag) -> Result<Node, ParseError> {
        let line = self.raw[id].line;
        let kind = match tag {
            Tag::Null => {
                self.scalar_text(id)?;
                NodeKind::Null
            }
            Tag::Bool => {
                let v = self.scalar_text(id)?;
                match v.to_lowercase().as_str() {
                    "yes" | "true" | "on" => NodeKind::Bool(true),
                    "no" | "false" | "off" => NodeKind::Bool(false),
                    _ => return Err(self.err(id, format!("{v:?} is not a YAML boolean"))),
                }
            }
            Tag::Int => {
                let v = self.scalar_text(id)?;
                let i = construct_int(v).map_err(|e| self.err(id, e))?;
                match i64::try_from(i) {
                    Ok(i) => NodeKind::Int(i),
                    Err(_) => {
                        return Err(
                            self.err(id, format!("integer {} does not fit in 64 bits and cannot be stored", v.trim()))
                        )
                    }
                }
            }
            Tag::Float => {
                let v = self.scalar_text(id)?;
                NodeKind::Float(construct_float(v).map_err(|e| self.err(id, e))?)
            }
            Tag::Str => {
                let v = self.scalar_text(id)?.to_string();
                if self.untrusted[id] {
                    NodeKind::Unsafe(v)
                } else {
                    NodeKind::Str(v)
                }
            }
            Tag::Timestamp => {
                let v = self.scalar_text(id)?;
                let iso = timestamp_iso(v).map_err(|e| self.err(id, e))?;
                NodeKind::Timestamp { iso, text: v.to_string() }
            }
            Tag::Merge | Tag::Value => {
                let name = if tag == Tag::Merge { "merge" } else { "value" };
                return Err(self.err(
                    id,
                    format!("could not determine a constructor for the tag '!!{name}' (a bare `<<` or `=` outside a mapping key)"),
                ));
            }
            Tag::Seq => {
                let raw = self.raw;
                let RawKind::Seq(items) = &raw[id].kind else {
                    return Err(
                        self.err(id, format!("expected a sequence node, but found {}", kind_name(&raw[id].kind)))
                    );
                };
                let mut out = Vec::with_capacity(items.len());
                for &item in items {
                    out.push(self.construct(item)?);
                }
                NodeKind::Seq(out)
            }
            Tag::Map => NodeKind::Map(self.construct_mapping(id)?),
        };
        Ok(Node::new(line, kind))
    }

    /// Keys tagged `!!value` (a plain `=`) are turned into strings by
    /// `flatten_mapping` before construction.
    fn construct_key(&mut self, id: usize) -> Result<Node, ParseError> {
        if self.node_tag(id) == Ok(Tag::Value) {
            return self.construct_as(id, Tag::Str);
        }
        self.construct(id)
    }

    fn map_pairs(&self, id: usize) -> Result<&'a [(usize, usize)], ParseError> {
        let raw = self.raw;
        match &raw[id].kind {
            RawKind::Map(p) => Ok(p),
            k => Err(self.err(id, format!("expected a mapping node, but found {}", kind_name(k)))),
        }
    }

    fn is_merge_key(&self, id: usize) -> bool {
        self.node_tag(id) == Ok(Tag::Merge)
    }

    /// Duplicate keys among the pairs written in this mapping (merge keys
    /// aside) are refused; unhashable keys fail as in PyYAML.
    fn check_duplicates(&mut self, id: usize) -> Result<(), ParseError> {
        if self.dups_checked[id] {
            return Ok(());
        }
        self.dups_checked[id] = true;
        let mut seen: HashMap<PyKey, Node> = HashMap::new();
        for &(k, _) in self.map_pairs(id)? {
            if self.is_merge_key(k) {
                continue;
            }
            let key = self.construct_key(k)?;
            let Some(pk) = py_key(&key, k) else {
                return Err(ParseError::at(
                    key.line,
                    "while constructing a mapping: found unhashable key (a list or mapping used as a key)",
                ));
            };
            if let Some(first) = seen.get(&pk) {
                return Err(ParseError::at(
                    key.line,
                    format!("found duplicate mapping key {} (first defined at line {})", py_repr(&key), first.line),
                ));
            }
            seen.insert(pk, key);
        }
        Ok(())
    }

    /// `flatten_mapping` under one merge mode: the (key, value) node pairs
    /// in the order PyYAML feeds them to the dict.
    fn flatten(&mut self, id: usize, mode: MergeMode) -> Result<Pairs, ParseError> {
        if let Some(p) = self.flat_memo.get(&(id, mode)) {
            return Ok(p.clone());
        }
        if !self.flat_busy.insert((id, mode)) {
            return Err(self.err(id, "recursive merge: a mapping merges itself with '<<'"));
        }
        let raw = self.raw;
        let mut merge: Vec<(usize, usize)> = Vec::new();
        let mut seen: HashSet<KeyIdentity> = HashSet::new();
        let mut explicit = Vec::new();
        for &(k, v) in self.map_pairs(id)? {
            if !self.is_merge_key(k) {
                explicit.push((k, v));
                continue;
            }
            match &raw[v].kind {
                RawKind::Map(_) => {
                    let sub = self.flatten(v, mode)?;
                    self.add_merged(&mut merge, &mut seen, &sub, mode);
                }
                RawKind::Seq(items) => {
                    let mut subs = Vec::with_capacity(items.len());
                    for &item in items {
                        if !matches!(raw[item].kind, RawKind::Map(_)) {
                            return Err(self.err(
                                item,
                                format!(
                                    "while constructing a mapping: expected a mapping for merging, but found {}",
                                    kind_name(&raw[item].kind)
                                ),
                            ));
                        }
                        subs.push(self.flatten(item, mode)?);
                    }
                    if mode == MergeMode::Classic {
                        subs.reverse();
                    }
                    for sub in subs {
                        self.add_merged(&mut merge, &mut seen, &sub, mode);
                    }
                }
                RawKind::Scalar { .. } => {
                    return Err(self.err(
                        v,
                        "while constructing a mapping: expected a mapping or list of mappings for merging, but found scalar",
                    ))
                }
            }
        }
        merge.extend(explicit);
        let out = Rc::new(merge);
        self.flat_busy.remove(&(id, mode));
        self.flat_memo.insert((id, mode), out.clone());
        Ok(out)
    }

    fn add_merged(
        &self,
        merge: &mut Vec<(usize, usize)>,
        seen: &mut HashSet<KeyIdentity>,
        sub: &[(usize, usize)],
        mode: MergeMode,
    ) {
        for &(k, v) in sub {
            let identity = match (&self.raw[k].kind, mode) {
                (_, MergeMode::Classic) => {
                    merge.push((k, v));
                    continue;
                }
                (RawKind::Scalar { value, .. }, MergeMode::Pyyaml604)
                    if value.chars().count() <= 1 && value.chars().all(|c| (c as u32) < 0x100) =>
                {
                    KeyIdentity::Text(value.clone())
                }
                _ => KeyIdentity::Node(k),
            };
            if seen.insert(identity) {
                merge.push((k, v));
            }
        }
    }

    /// Feeds pairs into a Python dict: the first key object stays, the last
    /// value wins.
    fn dict_of(&mut self, pairs: &[(usize, usize)]) -> Result<IndexMap<PyKey, (usize, usize)>, ParseError> {
        let mut d: IndexMap<PyKey, (usize, usize)> = IndexMap::new();
        for &(k, v) in pairs {
            let key = self.construct_key(k)?;
            let pk = py_key(&key, k)
                .ok_or_else(|| ParseError::at(key.line, "while constructing a mapping: found unhashable key"))?;
            match d.get_mut(&pk) {
                Some(slot) => slot.1 = v,
                None => {
                    d.insert(pk, (k, v));
                }
            }
        }
        Ok(d)
    }

    /// The mappings `id` merges, directly or through their own merges.
    fn merge_sources(&self, id: usize, out: &mut Vec<usize>) {
        let raw = self.raw;
        let RawKind::Map(pairs) = &raw[id].kind else {
            return;
        };
        for &(k, v) in pairs {
            if !self.is_merge_key(k) {
                continue;
            }
            let direct: Vec<usize> = match &raw[v].kind {
                RawKind::Map(_) => vec![v],
                RawKind::Seq(items) => items.clone(),
                RawKind::Scalar { .. } => Vec::new(),
            };
            for src in direct {
                if !out.contains(&src) {
                    out.push(src);
                    self.merge_sources(src, out);
                }
            }
        }
    }

    fn construct_mapping(&mut self, id: usize) -> Result<Vec<(Node, Node)>, ParseError> {
        self.check_duplicates(id)?;
        let pairs = self.map_pairs(id)?;
        let chosen: Vec<(usize, usize)> = if !pairs.iter().any(|&(k, _)| self.is_merge_key(k)) {
            pairs.to_vec()
        } else {
            let mut sources = Vec::new();
            self.merge_sources(id, &mut sources);
            for src in sources {
                if matches!(self.raw[src].kind, RawKind::Map(_)) {
                    self.check_duplicates(src)?;
                }
            }
            let mut dicts = Vec::new();
            for mode in MERGE_MODES {
                let flat = self.flatten(id, mode)?;
                dicts.push(self.dict_of(&flat)?);
            }
            let reference = &dicts[0];
            for (pk, &(k, v)) in reference {
                for other in &dicts[1..] {
                    let Some(&(_, v2)) = other.get(pk) else {
                        continue;
                    };
                    if v2 == v {
                        continue;
                    }
                    let a = self.construct(v)?;
                    let b = self.construct(v2)?;
                    if !same_value(&a, &b) {
                        let key = self.construct_key(k)?;
                        return Err(self.err(
                            id,
                            format!(
                                "mappings merged with '<<' give key {} different values (lines {} and {}); \
                                 which one Ansible keeps depends on its PyYAML version, so set the key \
                                 explicitly in this mapping",
                                py_repr(&key),
                                a.line.min(b.line),
                                a.line.max(b.line)
                            ),
                        ));
                    }
                }
            }
            reference.values().copied().collect()
        };
        let mut out = Vec::with_capacity(chosen.len());
        for (k, v) in chosen {
            let key = self.construct_key(k)?;
            let value = self.construct(v)?;
            out.push((key, value));
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------
// JSON, as `json.loads(data, cls=_legacy.Decoder)` reads it

mod json {
    //! Python's `json` module accepts NaN/Infinity and unbounded integers,
    //! keeps the last of duplicate keys, and Ansible's object hook turns
    //! `{"__ansible_unsafe": s}` / `{"__ansible_vault": s}` into tagged
    //! values. A hand parser keeps all of that, plus line numbers.

    use super::{Node, NodeKind, ParseError, MAX_DEPTH};

    /// Why a JSON attempt stopped: `NotJson` sends the text to the YAML
    /// loader (as Python's `except Exception` does); `Hard` is an error
    /// Python would not have had, but Craton cannot store the value.
    enum Fail {
        NotJson,
        Hard(ParseError),
    }

    type R<T> = Result<T, Fail>;

    struct P<'a> {
        b: &'a [u8],
        s: &'a str,
        i: usize,
        line: usize,
    }

    pub(super) fn parse(text: &str) -> Result<Option<Node>, ParseError> {
        let mut p = P { b: text.as_bytes(), s: text, i: 0, line: 1 };
        let r = (|| {
            p.ws();
            let v = p.value(0)?;
            p.ws();
            if p.i != p.b.len() {
                return Err(Fail::NotJson);
            }
            Ok(v)
        })();
        match r {
            Ok(v) => Ok(Some(v)),
            Err(Fail::NotJson) => Ok(None),
            Err(Fail::Hard(e)) => Err(e),
        }
    }

    impl P<'_> {
        fn ws(&mut self) {
            while let Some(&c) = self.b.get(self.i) {
                match c {
                    b'\n' => self.line += 1,
                    b' ' | b'\t' | b'\r' => {}
                    _ => break,
                }
                self.i += 1;
            }
        }

        fn eat(&mut self, lit: &str) -> bool {
            if self.b[self.i..].starts_with(lit.as_bytes()) {
                self.i += lit.len();
                true
            } else {
                false
            }
        }

        fn value(&mut self, depth: usize) -> R<Node> {
            if depth > MAX_DEPTH {
                return Err(Fail::Hard(ParseError::at(
                    self.line,
                    format!("JSON nested deeper than {MAX_DEPTH} levels"),
                )));
            }
            let line = self.line;
            let node = |kind| Node { line, kind };
            match self.b.get(self.i) {
                Some(b'{') => self.object(depth),
                Some(b'[') => {
                    self.i += 1;
                    let mut items = Vec::new();
                    self.ws();
                    if self.eat("]") {
                        return Ok(node(NodeKind::Seq(items)));
                    }
                    loop {
                        self.ws();
                        items.push(self.value(depth + 1)?);
                        self.ws();
                        if self.eat(",") {
                            continue;
                        }
                        if self.eat("]") {
                            return Ok(node(NodeKind::Seq(items)));
                        }
                        return Err(Fail::NotJson);
                    }
                }
                Some(b'"') => Ok(node(NodeKind::Str(self.string()?))),
                _ if self.eat("null") => Ok(node(NodeKind::Null)),
                _ if self.eat("true") => Ok(node(NodeKind::Bool(true))),
                _ if self.eat("false") => Ok(node(NodeKind::Bool(false))),
                _ if self.eat("NaN") => Ok(node(NodeKind::Float(f64::NAN))),
                _ if self.eat("Infinity") => Ok(node(NodeKind::Float(f64::INFINITY))),
                _ if self.eat("-Infinity") => Ok(node(NodeKind::Float(f64::NEG_INFINITY))),
                _ => self.number(line),
            }
        }

        fn digits(&mut self) -> usize {
            let start = self.i;
            while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
                self.i += 1;
            }
            self.i - start
        }

        fn number(&mut self, line: usize) -> R<Node> {
            let start = self.i;
            self.eat("-");
            match self.b.get(self.i) {
                Some(b'0') => self.i += 1,
                Some(b'1'..=b'9') => {
                    self.digits();
                }
                _ => return Err(Fail::NotJson),
            }
            let int_end = self.i;
            let mut is_float = false;
            if self.b.get(self.i) == Some(&b'.') {
                let save = self.i;
                self.i += 1;
                if self.digits() == 0 {
                    self.i = save;
                } else {
                    is_float = true;
                }
            }
            if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
                let save = self.i;
                self.i += 1;
                if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                    self.i += 1;
                }
                if self.digits() == 0 {
                    self.i = save;
                } else {
                    is_float = true;
                }
            }
            let text = &self.s[start..self.i];
            let kind = if is_float {
                NodeKind::Float(text.parse::<f64>().map_err(|_| Fail::NotJson)?)
            } else {
                match self.s[start..int_end].parse::<i64>() {
                    Ok(i) => NodeKind::Int(i),
                    Err(_) => {
                        return Err(Fail::Hard(ParseError::at(
                            line,
                            format!("integer {text} does not fit in 64 bits and cannot be stored"),
                        )))
                    }
                }
            };
            Ok(Node { line, kind })
        }

        fn hex4(&mut self) -> R<u32> {
            let h = self.s.get(self.i..self.i + 4).ok_or(Fail::NotJson)?;
            if !h.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(Fail::NotJson);
            }
            self.i += 4;
            u32::from_str_radix(h, 16).map_err(|_| Fail::NotJson)
        }

        fn string(&mut self) -> R<String> {
            self.i += 1;
            let mut out = String::new();
            loop {
                let rest = &self.s[self.i..];
                let stop = rest.find(|c: char| c == '"' || c == '\\' || (c as u32) < 0x20).ok_or(Fail::NotJson)?;
                out.push_str(&rest[..stop]);
                self.i += stop;
                match self.b[self.i] {
                    b'"' => {
                        self.i += 1;
                        return Ok(out);
                    }
                    b'\\' => {
                        self.i += 1;
                        let c = *self.b.get(self.i).ok_or(Fail::NotJson)?;
                        self.i += 1;
                        match c {
                            b'"' => out.push('"'),
                            b'\\' => out.push('\\'),
                            b'/' => out.push('/'),
                            b'b' => out.push('\u{8}'),
                            b'f' => out.push('\u{c}'),
                            b'n' => out.push('\n'),
                            b'r' => out.push('\r'),
                            b't' => out.push('\t'),
                            b'u' => {
                                let mut cp = self.hex4()?;
                                if (0xD800..0xDC00).contains(&cp) && self.s[self.i..].starts_with("\\u") {
                                    let save = self.i;
                                    self.i += 2;
                                    let lo = self.hex4()?;
                                    if (0xDC00..0xE000).contains(&lo) {
                                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                    } else {
                                        self.i = save;
                                    }
                                }
                                // A lone surrogate fails Ansible's UTF-8 check,
                                // which sends the text on to YAML.
                                out.push(char::from_u32(cp).ok_or(Fail::NotJson)?);
                            }
                            _ => return Err(Fail::NotJson),
                        }
                    }
                    _ => return Err(Fail::NotJson),
                }
            }
        }

        fn object(&mut self, depth: usize) -> R<Node> {
            let line = self.line;
            self.i += 1;
            let mut pairs: Vec<(Node, Node)> = Vec::new();
            self.ws();
            if !self.eat("}") {
                loop {
                    self.ws();
                    if self.b.get(self.i) != Some(&b'"') {
                        return Err(Fail::NotJson);
                    }
                    let kline = self.line;
                    let key = self.string()?;
                    self.ws();
                    if !self.eat(":") {
                        return Err(Fail::NotJson);
                    }
                    self.ws();
                    let value = self.value(depth + 1)?;
                    if let Some((first, _)) = pairs.iter().find(|(k, _)| k.as_str() == Some(&key)) {
                        return Err(Fail::Hard(ParseError::at(
                            kline,
                            format!("found duplicate key {key:?} (first defined at line {})", first.line),
                        )));
                    }
                    pairs.push((Node { line: kline, kind: NodeKind::Str(key) }, value));
                    self.ws();
                    if self.eat(",") {
                        continue;
                    }
                    if self.eat("}") {
                        break;
                    }
                    return Err(Fail::NotJson);
                }
            }
            // Ansible's object hook, in its order of precedence; other keys
            // of such an object are dropped, as Ansible drops them.
            for (hook, wrap) in [
                ("__ansible_unsafe", NodeKind::Unsafe as fn(String) -> NodeKind),
                ("__ansible_vault", NodeKind::Vault as fn(String) -> NodeKind),
            ] {
                if let Some((_, v)) = pairs.iter().find(|(k, _)| k.as_str() == Some(hook)) {
                    return match &v.kind {
                        NodeKind::Str(s) => Ok(Node { line, kind: wrap(s.clone()) }),
                        _ => Err(Fail::NotJson),
                    };
                }
            }
            if pairs.iter().any(|(k, _)| k.as_str() == Some("__ansible_type")) {
                return Err(Fail::NotJson);
            }
            Ok(Node { line, kind: NodeKind::Map(pairs) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn val(src: &str) -> Value {
        load(src).unwrap().unwrap().to_json().unwrap()
    }

    fn one(src: &str) -> Value {
        val(&format!("v: {src}"))["v"].clone()
    }

    fn err(src: &str) -> ParseError {
        match load(src).and_then(|n| n.map(|n| n.to_json()).transpose()) {
            Ok(v) => panic!("expected an error for {src:?}, got {v:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn yaml11_scalars() {
        for (src, want) in [
            ("yes", json!(true)),
            ("Off", json!(false)),
            ("y", json!("y")),
            ("n", json!("n")),
            ("tRue", json!("tRue")),
            ("010", json!(8)),
            ("0o10", json!("0o10")),
            ("09", json!("09")),
            ("0x_1F", json!(31)),
            ("-0b101", json!(-5)),
            ("1_000", json!(1000)),
            ("1:30", json!(90)),
            ("-1:30:00", json!(-5400)),
            ("1e3", json!("1e3")),
            ("1.0e+3", json!(1000.0)),
            ("1.e-1", json!(0.1)),
            (".5", json!(0.5)),
            ("1:30.5", json!(90.5)),
            ("~", json!(null)),
            ("", json!(null)),
            ("NULL", json!(null)),
            ("nULL", json!("nULL")),
            ("'yes'", json!("yes")),
            ("!!str 1", json!("1")),
            ("!!int '0x10'", json!(16)),
            ("!!float '1e3'", json!(1000.0)),
            ("!!bool 'YeS'", json!(true)),
            ("! 12", json!(12)),
            ("! '12'", json!(12)),
            ("2001-12-14", json!("2001-12-14")),
            ("2001-12-14t21:59:43.10-05:00", json!("2001-12-14T21:59:43.100000-05:00")),
            ("2001-12-14 21:59:43Z", json!("2001-12-14T21:59:43+00:00")),
            ("2001-1-1", json!("2001-1-1")),
            ("!!timestamp 2001-1-1", json!("2001-01-01")),
        ] {
            assert_eq!(crate::typed::to_plain(&one(src)), want, "{src}");
        }
        // Stored typed, as written; `--list` shows the isoformat() above.
        assert_eq!(one("2001-12-14 21:59:43Z"), json!({"__craton_timestamp": "2001-12-14 21:59:43Z"}));
        assert_eq!(one("!!timestamp 2001-1-1"), json!({"__craton_timestamp": "2001-1-1"}));
        assert_eq!(one("'2001-12-14'"), json!("2001-12-14"));
    }

    #[test]
    fn ansible_tags() {
        assert_eq!(one("!unsafe '{{ x }}'"), json!({"__ansible_unsafe": "{{ x }}"}));
        assert_eq!(one("!unsafe '12'"), json!(12));
        assert_eq!(one("!unsafe [a, 1]"), json!([{"__ansible_unsafe": "a"}, 1]));
        assert_eq!(
            one("!vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6162\n"),
            json!({"__ansible_vault": "$ANSIBLE_VAULT;1.1;AES256\n6162\n"})
        );
        assert!(err("v: !vault 12").message.contains("requires a string"));
        let e = err("a: 1\nv: !foo x\n");
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("!foo"), "{}", e.message);
    }

    #[test]
    fn merges() {
        let src = "b: &b {x: 1, y: 2}\nc: &c {z: 3}\nm:\n  <<: [*b, *c]\n  y: 9\n";
        assert_eq!(val(src)["m"], json!({"x": 1, "y": 9, "z": 3}));
        // The winner differs between PyYAML versions: refused.
        let e = err("b: &b {port: 1}\nc: &c {port: 2}\nm:\n  <<: [*b, *c]\n");
        assert!(e.message.contains("port"), "{}", e.message);
        // Overridden inside a source: every version agrees.
        let src = "b: &b {port: 1}\nm: &m {<<: *b, port: 2}\nx: {<<: [*m, *b]}\n";
        assert_eq!(val(src)["x"], json!({"port": 2}));
        assert!(err("<<: 1").message.contains("merging"));
    }

    #[test]
    fn duplicates_and_documents() {
        let e = err("a: 1\nb: 2\na: 3\n");
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("'a'"));
        assert_eq!(err("1: a\ntrue: b\n").line, Some(2));
        assert!(err("a: 1\n---\nb: 2\n").message.contains("single document"));
        assert!(load("# only a comment\n").unwrap().is_none());
        assert!(load("").unwrap().is_none());
        assert!(err("a: &x 1\nb: &x 2\n").message.contains("duplicate anchor"));
    }

    #[test]
    fn json_conversion() {
        let typed = val("{1: a, null: b, 1.5: c, 1e+20: d}");
        assert_eq!(typed, json!({"__craton_map": [[1, "a"], [null, "b"], [1.5, "c"], ["1e+20", "d"]]}));
        assert_eq!(crate::typed::to_plain(&typed), json!({"1": "a", "null": "b", "1.5": "c", "1e+20": "d"}));
        // Plain string keys stay a plain object; a reserved-looking key is
        // escaped into the map form so it is never read as an envelope.
        assert_eq!(val("{a: {b: 1}}"), json!({"a": {"b": 1}}));
        assert_eq!(val("{__craton_timestamp: x}"), json!({"__craton_map": [["__craton_timestamp", "x"]]}));
        assert_eq!(val("{\"__craton_map\": 1}"), json!({"__craton_map": [["__craton_map", 1]]}));
        assert_eq!(val("? .inf\n: x\n"), json!({"Infinity": "x"}));
        assert_eq!(err("a: 1\nb: .nan\n").line, Some(2));
        assert_eq!(err("a: 123456789012345678901234567890\n").line, Some(1));
        assert!(err("{1: a, '1': b}").message.contains("both become"));
        assert!(err("? 2001-01-01\n: x\n").message.contains("key"));
    }

    #[test]
    fn lines() {
        let n = load("a:\n  b: |\n    text\n  c: &x\n    d: 1\n  e: [1]\n").unwrap().unwrap();
        let NodeKind::Map(top) = &n.kind else { panic!() };
        let NodeKind::Map(inner) = &top[0].1.kind else { panic!() };
        let lines: Vec<usize> = inner.iter().map(|(_, v)| v.line).collect();
        assert_eq!(lines, [2, 4, 6]);
    }

    #[test]
    fn syntax_errors_have_lines() {
        let e = err("a: 1\nb: [1, 2\nc: 3\n");
        assert!(e.line.is_some());
        let e = err("a: 1\n b: 2\n");
        assert_eq!(e.line, Some(2));
        assert_eq!(err("a: \u{1}\n").line, Some(1));
    }

    #[test]
    fn data_loader() {
        assert_eq!(load_data("{\"a\": 1e3}").unwrap(), Some(json!({"a": 1000.0})));
        assert_eq!(load_data("a: 1e3").unwrap(), Some(json!({"a": "1e3"})));
        assert_eq!(
            load_data("{\"a\": {\"__ansible_unsafe\": \"x\", \"b\": 1}}").unwrap(),
            Some(json!({"a": {"__ansible_unsafe": "x"}}))
        );
        assert!(load_data("{\"a\": NaN}").is_err());
        assert!(load_data("{\"a\": 1, \"a\": 2}").is_err());
        assert_eq!(load_data("").unwrap(), None);
        let e = load_data("$ANSIBLE_VAULT;1.1;AES256\n6162\n").unwrap_err();
        assert!(e.message.contains("vault-encrypted files are not supported yet"));
    }

    #[test]
    fn libyaml_syntax() {
        assert_eq!(val("a:\tb\nc:\t\td\n"), json!({"a": "b", "c": "d"}));
        assert_eq!(val("a: |\n"), json!({"a": ""}));
        assert_eq!(val("a: |+\n\n"), json!({"a": "\n"}));
        assert_eq!(val("a: >-\n\nb: 1\n"), json!({"a": "", "b": 1}));
        assert_eq!(val("\u{feff}a: 1\n"), json!({"a": 1}));
        for bad in [
            "- [|x]\n",
            "[?x]\n",
            ": v\n",
            "...\n",
            "a: [!!str]\n",
            "&a: b\n",
            "a: \u{2028}\n",
            "%YAML 2.0\n---\na: 1\n",
        ] {
            assert!(load(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn trust_follows_first_construction() {
        // The anchor is built (trusted) before the alias inside !unsafe...
        assert_eq!(val("a: &x s\nb: !unsafe [*x]\n"), json!({"a": "s", "b": ["s"]}));
        // ...unless PyYAML defers its mapping past the !unsafe node.
        assert_eq!(
            val("a:\n  k: &x s\nb: !unsafe [*x]\n"),
            json!({"a": {"k": {"__ansible_unsafe": "s"}}, "b": [{"__ansible_unsafe": "s"}]})
        );
        assert_eq!(val("b: &b !unsafe {x: s}\nd: {<<: *b}\n")["d"], json!({"x": {"__ansible_unsafe": "s"}}));
    }

    #[test]
    fn limits() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(load(&deep(200)).is_ok());
        assert!(load(&deep(MAX_DEPTH + 10)).is_err());
        let block = |n: usize| -> String { (0..n).map(|i| format!("{}k:\n", " ".repeat(i))).collect() };
        assert!(load(&block(200)).is_ok());
        assert!(load(&block(MAX_DEPTH + 10)).unwrap_err().message.contains("deeper"));
        assert!(load_data(&deep(MAX_DEPTH + 10)).is_err());
        let mut laughs = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            laughs.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        assert!(load(&laughs).unwrap_err().message.contains("aliases"));
        assert!(load("a: &x [*x]\n").unwrap_err().message.contains("recursive"));
    }

    #[test]
    fn float_repr() {
        for (f, s) in [
            (1.0, "1.0"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (1e-5, "1e-05"),
            (-1.5e-7, "-1.5e-07"),
            (0.1, "0.1"),
            (123.456, "123.456"),
        ] {
            assert_eq!(py_float_repr(f), s);
        }
    }

    /// PyYAML's C loader (what Ansible uses) on every chomping indicator
    /// at the end of an input without a final line break (values printed by
    /// `yaml.load(src, Loader=yaml.CSafeLoader)`, PyYAML 6.0.4).
    #[test]
    fn block_scalar_at_end_of_file() {
        for (src, want) in [
            ("x: |\n  abc", json!({"x": "abc"})),
            ("x: |\n  abc\n  ", json!({"x": "abc\n"})),
            ("x: |\n  abc\n   ", json!({"x": "abc\n "})),
            ("x: |\n  abc\n\n  def", json!({"x": "abc\n\ndef"})),
            ("x: |\n  abc\n\n", json!({"x": "abc\n"})),
            ("x: |\n  abc\n  def  ", json!({"x": "abc\ndef  "})),
            ("x: |\n  abc\n\n  ", json!({"x": "abc\n"})),
            ("x: |\n\n  abc", json!({"x": "\nabc"})),
            ("x: |-\n  abc", json!({"x": "abc"})),
            ("x: |-\n  abc\n  ", json!({"x": "abc"})),
            ("x: |-\n  abc\n   ", json!({"x": "abc\n "})),
            ("x: |-\n  abc\n\n  def", json!({"x": "abc\n\ndef"})),
            ("x: |-\n  abc\n\n", json!({"x": "abc"})),
            ("x: |-\n  abc\n  def  ", json!({"x": "abc\ndef  "})),
            ("x: |-\n  abc\n\n  ", json!({"x": "abc"})),
            ("x: |-\n\n  abc", json!({"x": "\nabc"})),
            ("x: |+\n  abc", json!({"x": "abc"})),
            ("x: |+\n  abc\n  ", json!({"x": "abc\n"})),
            ("x: |+\n  abc\n   ", json!({"x": "abc\n "})),
            ("x: |+\n  abc\n\n  def", json!({"x": "abc\n\ndef"})),
            ("x: |+\n  abc\n\n", json!({"x": "abc\n\n"})),
            ("x: |+\n  abc\n  def  ", json!({"x": "abc\ndef  "})),
            ("x: |+\n  abc\n\n  ", json!({"x": "abc\n\n"})),
            ("x: |+\n\n  abc", json!({"x": "\nabc"})),
            ("x: >\n  abc", json!({"x": "abc"})),
            ("x: >\n  abc\n  ", json!({"x": "abc\n"})),
            ("x: >\n  abc\n   ", json!({"x": "abc\n "})),
            ("x: >\n  abc\n\n  def", json!({"x": "abc\ndef"})),
            ("x: >\n  abc\n\n", json!({"x": "abc\n"})),
            ("x: >\n  abc\n  def  ", json!({"x": "abc def  "})),
            ("x: >\n  abc\n\n  ", json!({"x": "abc\n"})),
            ("x: >\n\n  abc", json!({"x": "\nabc"})),
            ("x: >-\n  abc", json!({"x": "abc"})),
            ("x: >-\n  abc\n  ", json!({"x": "abc"})),
            ("x: >-\n  abc\n   ", json!({"x": "abc\n "})),
            ("x: >-\n  abc\n\n  def", json!({"x": "abc\ndef"})),
            ("x: >-\n  abc\n\n", json!({"x": "abc"})),
            ("x: >-\n  abc\n  def  ", json!({"x": "abc def  "})),
            ("x: >-\n  abc\n\n  ", json!({"x": "abc"})),
            ("x: >-\n\n  abc", json!({"x": "\nabc"})),
            ("x: >+\n  abc", json!({"x": "abc"})),
            ("x: >+\n  abc\n  ", json!({"x": "abc\n"})),
            ("x: >+\n  abc\n   ", json!({"x": "abc\n "})),
            ("x: >+\n  abc\n\n  def", json!({"x": "abc\ndef"})),
            ("x: >+\n  abc\n\n", json!({"x": "abc\n\n"})),
            ("x: >+\n  abc\n  def  ", json!({"x": "abc def  "})),
            ("x: >+\n  abc\n\n  ", json!({"x": "abc\n\n"})),
            ("x: >+\n\n  abc", json!({"x": "\nabc"})),
            ("x: |2\n  abc", json!({"x": "abc"})),
            ("x: |2\n  abc\n  ", json!({"x": "abc\n"})),
            ("x: |2\n  abc\n   ", json!({"x": "abc\n "})),
            ("x: |2\n  abc\n\n  def", json!({"x": "abc\n\ndef"})),
            ("x: |2\n  abc\n\n", json!({"x": "abc\n"})),
            ("x: |2\n  abc\n  def  ", json!({"x": "abc\ndef  "})),
            ("x: |2\n  abc\n\n  ", json!({"x": "abc\n"})),
            ("x: |2\n\n  abc", json!({"x": "\nabc"})),
            ("x: |+2\n  abc", json!({"x": "abc"})),
            ("x: |+2\n  abc\n  ", json!({"x": "abc\n"})),
            ("x: |+2\n  abc\n   ", json!({"x": "abc\n "})),
            ("x: |+2\n  abc\n\n  def", json!({"x": "abc\n\ndef"})),
            ("x: |+2\n  abc\n\n", json!({"x": "abc\n\n"})),
            ("x: |+2\n  abc\n  def  ", json!({"x": "abc\ndef  "})),
            ("x: |+2\n  abc\n\n  ", json!({"x": "abc\n\n"})),
            ("x: |+2\n\n  abc", json!({"x": "\nabc"})),
            ("a:\n  x: |\n    abc", json!({"a": {"x": "abc"}})),
            ("- |\n  abc", json!(["abc"])),
            ("x: |\n  abc\n# c", json!({"x": "abc\n"})),
            ("x: |\n  abc\n#c", json!({"x": "abc\n"})),
            ("y: 1\nx: |\n  abc\n  # not comment", json!({"y": 1, "x": "abc\n# not comment"})),
        ] {
            assert_eq!(val(src), want, "{src:?}");
        }
        assert_eq!(
            one("!vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6162"),
            json!({"__ansible_vault": "$ANSIBLE_VAULT;1.1;AES256\n6162"})
        );
    }

    /// libyaml has no indentation rule inside flow collections.
    #[test]
    fn flow_collection_closed_at_column_1() {
        for (src, want) in [
            ("x: {\n  \"a\": \"b\"\n}\n", json!({"x": {"a": "b"}})),
            ("x: [\"b\",\n]\n", json!({"x": ["b"]})),
            ("x: [\n\"a\"\n]\n", json!({"x": ["a"]})),
            ("x: [a,\nb]\n", json!({"x": ["a", "b"]})),
            ("a:\n  x: {\n    \"a\": \"b\"\n  }\n", json!({"a": {"x": {"a": "b"}}})),
            ("a:\n  x: {\"a\": \"b\",\n \"c\": 1}\n", json!({"a": {"x": {"a": "b", "c": 1}}})),
            (
                "a:\n  x: [{\"k\": 'v'},\n{\"k\": \"multi\n line\"}\n]\ny: 2\n",
                json!({"a": {"x": [{"k": "v"}, {"k": "multi line"}]}, "y": 2}),
            ),
        ] {
            assert_eq!(val(src), want, "{src:?}");
        }
        // Lines are those of the original text.
        assert_eq!(err("x: {\n  \"a\": \"b\"\n}\ny: [\n").line, Some(5));
        assert_eq!(val("x: \"a\nb\"\n"), json!({"x": "a b"}));
        assert_eq!(val("a:\n  x: 'it''s\n b'\n  y: \"q\\\"\n\n c\"\n"), json!({"a": {"x": "it's b", "y": "q\"\nc"}}));
        // Outside flow collections indentation still matters.
        assert!(load("a:\n  b: 1\n c: 2\n").is_err());
    }
}
