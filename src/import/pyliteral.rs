//! Python's `ast.literal_eval` as Ansible's INI plugin uses it
//! (`InventoryModule._parse_value`), producing the JSON that
//! `ansible-inventory --list` would print for the value.
//!
//! It exists because an INI inventory value is not a string: `port=22` is an
//! int, `x="1"` on a host line is an int too (shlex ate the quotes), `{1,2}`
//! is a list, and anything `literal_eval` rejects stays the original text.
//! Reproducing that needs Python's tokenizer rules (number forms, string
//! prefixes and escapes, implicit concatenation, nesting limits), the exact
//! set of nodes `literal_eval` accepts, the order in which it raises (a
//! TypeError for an unhashable key aborts Ansible's parse, a ValueError just
//! keeps the string), and what Ansible then does with the result: tuples and
//! sets become lists (sets in CPython's iteration order where that order is
//! deterministic), complex numbers and `...` become strings, bytes become
//! untrusted strings (printed as `{"__ansible_unsafe": ...}`), and dict keys
//! become strings the way `json.dumps` writes them.

use serde_json::{Map, Number, Value};

/// `parse_value`'s answer when Ansible would fail to parse the inventory
/// (or could not print the value). The message says why.
type Fail = String;

/// Ansible's InventoryModule._parse_value: literal_eval, and on ValueError/SyntaxError the original string.
///
/// `Err` where Ansible's parse fails (TypeError from an unhashable dict key
/// or set element, a complex or `...` dict key, an int too large for a
/// float in a complex sum, nesting deep enough for CPython's parser to give
/// up) and where serde_json cannot hold what Ansible would print (ints
/// outside i64, infinite floats, tuple or bytes dict keys, which make
/// `ansible-inventory` itself crash). `\N{...}` escapes are refused too:
/// decoding them needs the Unicode name database.
pub fn parse_value(v: &str) -> Result<Value, String> {
    match literal_eval(v) {
        Eval::Value(py) => to_json(&py, 1),
        Eval::NotLiteral => Ok(Value::String(v.to_string())),
        Eval::Fail(msg) => Err(msg),
    }
}

/// The three ways `literal_eval` can end, as `_parse_value` sees them.
#[derive(Debug)]
enum Eval<T> {
    Value(T),
    /// ValueError or SyntaxError: `_parse_value` keeps the original string.
    NotLiteral,
    /// Any other exception: the inventory fails to parse.
    Fail(Fail),
}

impl<T> Eval<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Eval<U> {
        match self {
            Eval::Value(v) => Eval::Value(f(v)),
            Eval::NotLiteral => Eval::NotLiteral,
            Eval::Fail(m) => Eval::Fail(m),
        }
    }
}

/// Shorthand for a syntax error inside the tokenizer and parser.
#[derive(Debug)]
enum Stop {
    Syntax,
    Fail(Fail),
}

fn literal_eval(source: &str) -> Eval<PyVal> {
    // literal_eval strips only spaces and tabs before parsing.
    let source = source.trim_start_matches([' ', '\t']);
    // CPython refuses NUL in source text before tokenizing.
    if source.contains('\0') {
        return Eval::NotLiteral;
    }
    let (tokens, prefix_run) = match tokenize(source) {
        Ok(t) => t,
        Err(Stop::Syntax) => return Eval::NotLiteral,
        Err(Stop::Fail(m)) => return Eval::Fail(m),
    };
    let mut parser = Parser { tokens: &tokens, pos: 0 };
    let node = match parser.parse_top() {
        Ok(n) => n,
        Err(Stop::Syntax) => return Eval::NotLiteral,
        Err(Stop::Fail(m)) => return Eval::Fail(m),
    };
    // Converting the C AST to Python objects recurses once per nesting level
    // and hits Python's recursion limit (RecursionError) on deep trees.
    if node.depth().max(prefix_run + 1) > AST_DEPTH_LIMIT {
        return Eval::Fail("value nests too deeply for Python's AST conversion (RecursionError)".into());
    }
    evaluate(&node)
}

// ---------------------------------------------------------------------------
// CPython limits

/// Tokenizer MAXLEVEL: the 201st nested bracket is a SyntaxError.
const MAX_BRACKET_DEPTH: usize = 200;
/// PEG parser MAXSTACK; exceeding it is a MemoryError in 3.11.
const PARSER_MAX_STACK: usize = 6000;
/// Parser levels used before the first token, and per bracket level, as
/// measured on CPython 3.11 (an approximation: the cost differs by a level
/// or two between bracket kinds).
const PARSER_BASE_LEVELS: usize = 24;
const PARSER_LEVELS_PER_BRACKET: usize = 29;
/// Deepest AST that CPython's ast-to-object conversion builds before
/// raising RecursionError, as measured inside `ansible-inventory` (a chain
/// of 2953 unary minus signs parses, 2954 does not). It depends on the
/// Python stack depth at the call, so it is exact only for the INI plugin.
const AST_DEPTH_LIMIT: usize = 2954;
/// Nesting of lists, tuples, sets and dicts beyond which Ansible runs out of
/// Python stack (RecursionError) converting or printing the value; measured
/// with ansible-inventory, where it starts between 163 and 165 levels.
const MAX_VALUE_DEPTH: usize = 162;
/// `sys.get_int_max_str_digits()`: longer decimal int literals are a
/// SyntaxError, and longer ints cannot be printed.
const INT_MAX_STR_DIGITS: usize = 4300;

// ---------------------------------------------------------------------------
// Values

/// A Python str: code points, because `'\ud800'` is a valid str.
type PyStr = Vec<u32>;

#[derive(Debug, Clone)]
enum PyVal {
    None,
    Bool(bool),
    Int(BigInt),
    Float(f64),
    Complex(f64, f64),
    Str(PyStr),
    Bytes(Vec<u8>),
    Ellipsis,
    Tuple(Vec<PyVal>),
    List(Vec<PyVal>),
    /// Unique elements in CPython's iteration order.
    Set(Vec<PyVal>),
    Dict(Vec<(PyVal, PyVal)>),
}

impl PyVal {
    fn is_hashable(&self) -> bool {
        match self {
            PyVal::List(_) | PyVal::Set(_) | PyVal::Dict(_) => false,
            PyVal::Tuple(items) => items.iter().all(PyVal::is_hashable),
            _ => true,
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            PyVal::List(_) => "list",
            PyVal::Set(_) => "set",
            PyVal::Dict(_) => "dict",
            PyVal::Tuple(items) => items.iter().find(|i| !i.is_hashable()).map_or("tuple", PyVal::type_name),
            _ => "object",
        }
    }
}

/// Numbers as Python compares them: bool is an int, and int/float/complex
/// compare by exact value.
enum Num<'a> {
    Int(std::borrow::Cow<'a, BigInt>),
    Float(f64),
    Complex(f64, f64),
}

fn as_num(v: &PyVal) -> Option<Num<'_>> {
    use std::borrow::Cow;
    match v {
        PyVal::Bool(b) => Some(Num::Int(Cow::Owned(BigInt::from_u64(u64::from(*b))))),
        PyVal::Int(i) => Some(Num::Int(Cow::Borrowed(i))),
        PyVal::Float(f) => Some(Num::Float(*f)),
        PyVal::Complex(r, i) => Some(Num::Complex(*r, *i)),
        _ => None,
    }
}

fn num_eq(a: &Num<'_>, b: &Num<'_>) -> bool {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => x == y,
        (Num::Float(x), Num::Float(y)) => x == y,
        (Num::Int(i), Num::Float(f)) | (Num::Float(f), Num::Int(i)) => i.eq_f64(*f),
        (Num::Complex(r1, i1), Num::Complex(r2, i2)) => r1 == r2 && i1 == i2,
        (Num::Complex(r, i), other) | (other, Num::Complex(r, i)) => *i == 0.0 && num_eq(&Num::Float(*r), other),
    }
}

/// Python `==` between hashable values (the only ones ever compared).
fn py_eq(a: &PyVal, b: &PyVal) -> bool {
    if let (Some(x), Some(y)) = (as_num(a), as_num(b)) {
        return num_eq(&x, &y);
    }
    match (a, b) {
        (PyVal::None, PyVal::None) | (PyVal::Ellipsis, PyVal::Ellipsis) => true,
        (PyVal::Str(x), PyVal::Str(y)) => x == y,
        (PyVal::Bytes(x), PyVal::Bytes(y)) => x == y,
        (PyVal::Tuple(x), PyVal::Tuple(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_eq(p, q)),
        _ => false,
    }
}

// ---------------------------------------------------------------------------
// Tokenizer

#[derive(Debug, Clone, PartialEq)]
enum NumLit {
    Int(BigInt),
    Float(f64),
    Imag(f64),
}

#[derive(Debug, Clone, PartialEq)]
enum StrLit {
    Str(PyStr),
    Bytes(Vec<u8>),
    /// f-strings parse to JoinedStr, which literal_eval rejects.
    FString,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(NumLit),
    Str(StrLit),
    True,
    False,
    None,
    /// A name that NFKC-normalizes to `set`.
    SetName,
    Ellipsis,
    Open(char),
    Close(char),
    Comma,
    Colon,
    Plus,
    Minus,
    DoubleStar,
    /// `~` or `not`: prefix operators literal_eval rejects.
    Not,
    /// Any other name or operator: valid Python, never a literal.
    Other,
    End,
}

impl Tok {
    /// Tokens after which `+`/`-` is binary, not unary.
    fn ends_operand(&self) -> bool {
        matches!(
            self,
            Tok::Num(_)
                | Tok::Str(_)
                | Tok::True
                | Tok::False
                | Tok::None
                | Tok::SetName
                | Tok::Ellipsis
                | Tok::Close(_)
        ) || *self == Tok::Other
    }
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
}

/// The tokens (ending in `End`) and the longest run of prefix operators,
/// which nests the AST as deeply as brackets do.
fn tokenize(source: &str) -> Result<(Vec<Tok>, usize), Stop> {
    // CPython reads string input with universal newlines.
    let text = source.replace("\r\n", "\n").replace('\r', "\n");
    let mut lx = Lexer { chars: text.chars().collect(), pos: 0 };
    let mut max_prefix_run = 0usize;
    let mut tokens: Vec<Tok> = Vec::new();
    // Brackets still open, each with the parser levels it costs.
    let mut open: Vec<(char, usize)> = Vec::new();
    let mut pending_unary = 0usize;
    let mut at_line_start = true;
    let mut logical_line_done = false;

    loop {
        if at_line_start && open.is_empty() {
            // Indentation of a new logical line: blank and comment-only
            // lines are skipped, the first real line must not be indented,
            // and eval input allows nothing after the first logical line.
            let mut col = 0usize;
            while let Some(&c) = lx.chars.get(lx.pos) {
                match c {
                    ' ' => col += 1,
                    '\t' => col = (col / 8 + 1) * 8,
                    '\x0c' => col = 0,
                    _ => break,
                }
                lx.pos += 1;
            }
            match lx.chars.get(lx.pos) {
                None => break,
                Some('#') => {
                    lx.skip_comment();
                    continue;
                }
                Some('\n') => {
                    lx.pos += 1;
                    continue;
                }
                Some('\\') if lx.chars.get(lx.pos + 1) == Some(&'\n') && tokens.is_empty() => {
                    // A continuation on an otherwise empty first line.
                    lx.pos += 2;
                    at_line_start = false;
                    if lx.pos >= lx.chars.len() {
                        return Err(Stop::Syntax);
                    }
                    continue;
                }
                Some(_) => {
                    if logical_line_done || col > 0 {
                        return Err(Stop::Syntax);
                    }
                }
            }
            at_line_start = false;
        }

        let Some(&c) = lx.chars.get(lx.pos) else {
            break;
        };
        match c {
            ' ' | '\t' | '\x0c' => {
                lx.pos += 1;
                continue;
            }
            '#' => {
                lx.skip_comment();
                continue;
            }
            '\n' => {
                lx.pos += 1;
                if open.is_empty() {
                    if !tokens.is_empty() {
                        logical_line_done = true;
                    }
                    at_line_start = true;
                }
                continue;
            }
            '\\' => {
                // Explicit line joining; anything else after a backslash is
                // "unexpected character after line continuation character".
                if lx.chars.get(lx.pos + 1) != Some(&'\n') {
                    return Err(Stop::Syntax);
                }
                lx.pos += 2;
                if lx.pos >= lx.chars.len() {
                    return Err(Stop::Syntax);
                }
                continue;
            }
            _ => {}
        }

        let tok = if c.is_ascii_digit() || (c == '.' && lx.peek_is(1, |d| d.is_ascii_digit())) {
            Tok::Num(lx.number()?)
        } else if c == '\'' || c == '"' {
            Tok::Str(lx.string("")?)
        } else if is_identifier_start(c) {
            let start = lx.pos;
            while lx.chars.get(lx.pos).is_some_and(|&c| is_identifier_char(c)) {
                lx.pos += 1;
            }
            let name: String = lx.chars[start..lx.pos].iter().collect();
            let next_is_quote = matches!(lx.chars.get(lx.pos), Some('\'' | '"'));
            if next_is_quote && is_string_prefix(&name) {
                Tok::Str(lx.string(&name.to_ascii_lowercase())?)
            } else {
                match name.as_str() {
                    "True" => Tok::True,
                    "False" => Tok::False,
                    "None" => Tok::None,
                    "not" => Tok::Not,
                    _ if is_set_name(&name) => Tok::SetName,
                    _ => Tok::Other,
                }
            }
        } else {
            lx.operator()?
        };

        // Parser and tokenizer depth limits, in source order as CPython
        // meets them.
        match &tok {
            Tok::Open(b) => {
                if open.len() >= MAX_BRACKET_DEPTH {
                    return Err(Stop::Syntax);
                }
                open.push((*b, PARSER_LEVELS_PER_BRACKET + pending_unary));
                pending_unary = 0;
            }
            Tok::Close(b) => {
                let opener = match b {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                match open.pop() {
                    Some((o, _)) if o == opener => {}
                    _ => return Err(Stop::Syntax),
                }
                pending_unary = 0;
            }
            Tok::Plus | Tok::Minus | Tok::Not if !tokens.last().is_some_and(Tok::ends_operand) => pending_unary += 1,
            _ => pending_unary = 0,
        }
        max_prefix_run = max_prefix_run.max(pending_unary);
        let levels = PARSER_BASE_LEVELS + open.iter().map(|(_, l)| l).sum::<usize>() + pending_unary;
        if levels >= PARSER_MAX_STACK {
            return Err(Stop::Fail("value nests too deeply for Python's parser (MemoryError)".into()));
        }
        tokens.push(tok);
    }
    if !open.is_empty() || tokens.is_empty() {
        return Err(Stop::Syntax);
    }
    // Two operands side by side (`() set()`, `1 2`, `'a' 1`) can never
    // parse, whatever surrounds them; catching it here keeps such input a
    // SyntaxError even where it would otherwise be skipped as non-literal.
    let operand_start = |t: &Tok| {
        matches!(
            t,
            Tok::Num(_)
                | Tok::Str(_)
                | Tok::True
                | Tok::False
                | Tok::None
                | Tok::SetName
                | Tok::Ellipsis
                | Tok::Open('{')
        )
    };
    let literal_end = |t: &Tok| {
        matches!(
            t,
            Tok::Num(_)
                | Tok::Str(_)
                | Tok::True
                | Tok::False
                | Tok::None
                | Tok::SetName
                | Tok::Ellipsis
                | Tok::Close(_)
        )
    };
    for w in tokens.windows(2) {
        let concatenation = matches!((&w[0], &w[1]), (Tok::Str(_), Tok::Str(_)));
        if literal_end(&w[0]) && operand_start(&w[1]) && !concatenation {
            return Err(Stop::Syntax);
        }
    }
    tokens.push(Tok::End);
    Ok((tokens, max_prefix_run))
}

fn is_identifier_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()
}

fn is_identifier_char(c: char) -> bool {
    is_identifier_start(c) || c.is_ascii_digit()
}

fn is_string_prefix(name: &str) -> bool {
    matches!(name.to_ascii_lowercase().as_str(), "r" | "u" | "b" | "br" | "rb" | "f" | "fr" | "rf")
}

/// Python NFKC-normalizes identifiers, so `ｓｅｔ()` is `set()`. These are
/// the identifier characters whose NFKC form is `s`, `e` and `t`.
fn is_set_name(name: &str) -> bool {
    const S: &[u32] = &[
        0x73, 0x17F, 0x2E2, 0x209B, 0xFF53, 0x1D42C, 0x1D460, 0x1D494, 0x1D4C8, 0x1D4FC, 0x1D530, 0x1D564, 0x1D598,
        0x1D5CC, 0x1D600, 0x1D634, 0x1D668, 0x1D69C,
    ];
    const E: &[u32] = &[
        0x65, 0x1D49, 0x2091, 0x212F, 0x2147, 0xFF45, 0x1D41E, 0x1D452, 0x1D486, 0x1D4EE, 0x1D522, 0x1D556, 0x1D58A,
        0x1D5BE, 0x1D5F2, 0x1D626, 0x1D65A, 0x1D68E,
    ];
    const T: &[u32] = &[
        0x74, 0x1D57, 0x209C, 0xFF54, 0x1D42D, 0x1D461, 0x1D495, 0x1D4C9, 0x1D4FD, 0x1D531, 0x1D565, 0x1D599, 0x1D5CD,
        0x1D601, 0x1D635, 0x1D669, 0x1D69D,
    ];
    let cs: Vec<u32> = name.chars().map(|c| c as u32).collect();
    matches!(cs.as_slice(), [s, e, t] if S.contains(s) && E.contains(e) && T.contains(t))
}

impl Lexer {
    fn peek_is(&self, ahead: usize, f: impl Fn(char) -> bool) -> bool {
        self.chars.get(self.pos + ahead).is_some_and(|&c| f(c))
    }

    fn at(&self, i: usize) -> Option<char> {
        self.chars.get(i).copied()
    }

    fn skip_comment(&mut self) {
        while self.chars.get(self.pos).is_some_and(|&c| c != '\n') {
            self.pos += 1;
        }
    }

    fn operator(&mut self) -> Result<Tok, Stop> {
        let c = self.chars[self.pos];
        let next = self.at(self.pos + 1);
        let (tok, len) = match c {
            '(' | '[' | '{' => (Tok::Open(c), 1),
            ')' | ']' | '}' => (Tok::Close(c), 1),
            ',' => (Tok::Comma, 1),
            ':' if next == Some('=') => (Tok::Other, 2),
            ':' => (Tok::Colon, 1),
            '+' | '-' if next == Some('=') => (Tok::Other, 2),
            '-' if next == Some('>') => (Tok::Other, 2),
            '+' => (Tok::Plus, 1),
            '-' => (Tok::Minus, 1),
            '*' if next == Some('*') => {
                if self.at(self.pos + 2) == Some('=') {
                    (Tok::Other, 3)
                } else {
                    (Tok::DoubleStar, 2)
                }
            }
            '.' if next == Some('.') && self.at(self.pos + 2) == Some('.') => (Tok::Ellipsis, 3),
            '!' if next == Some('=') => (Tok::Other, 2),
            '~' => (Tok::Not, 1),
            '.' | '*' | '/' | '%' | '@' | '&' | '|' | '^' | '<' | '>' | '=' | ';' => (Tok::Other, 1),
            // `$`, `?`, backtick, a lone `!` and control characters are
            // invalid anywhere outside strings and comments.
            _ => return Err(Stop::Syntax),
        };
        self.pos += len;
        Ok(tok)
    }

    /// CPython 3.11's `tok_get` number rules, then the value.
    fn number(&mut self) -> Result<NumLit, Stop> {
        let start = self.pos;
        let c = self.chars[self.pos];
        if c == '.' {
            self.pos += 1;
            return self.fraction(start);
        }
        if c == '0' {
            self.pos += 1;
            let radix = match self.at(self.pos) {
                Some('x' | 'X') => 16,
                Some('o' | 'O') => 8,
                Some('b' | 'B') => 2,
                _ => 0,
            };
            if radix != 0 {
                self.pos += 1;
                let digits_start = self.pos;
                loop {
                    if self.at(self.pos) == Some('_') {
                        self.pos += 1;
                    }
                    if !self.at(self.pos).is_some_and(|d| d.is_digit(radix)) {
                        return Err(Stop::Syntax);
                    }
                    while self.at(self.pos).is_some_and(|d| d.is_digit(radix)) {
                        self.pos += 1;
                    }
                    if self.at(self.pos) != Some('_') {
                        break;
                    }
                }
                if radix != 16 && self.at(self.pos).is_some_and(|d| d.is_ascii_digit()) {
                    return Err(Stop::Syntax);
                }
                self.end_of_number()?;
                let digits: String = self.chars[digits_start..self.pos].iter().filter(|&&d| d != '_').collect();
                return Ok(NumLit::Int(BigInt::from_digits(&digits, radix)));
            }
            // Zeros (underscore-separated), then maybe more digits, which
            // are only allowed in floats and imaginaries.
            loop {
                if self.at(self.pos) == Some('_') {
                    self.pos += 1;
                    if !self.at(self.pos).is_some_and(|d| d.is_ascii_digit()) {
                        return Err(Stop::Syntax);
                    }
                }
                if self.at(self.pos) != Some('0') {
                    break;
                }
                self.pos += 1;
            }
            let mut nonzero = false;
            if self.at(self.pos).is_some_and(|d| d.is_ascii_digit()) {
                nonzero = true;
                self.decimal_tail()?;
            }
            return match self.at(self.pos) {
                Some('.') => {
                    self.pos += 1;
                    self.fraction(start)
                }
                Some('e' | 'E') => self.exponent(start),
                Some('j' | 'J') => self.imaginary(start),
                _ if nonzero => Err(Stop::Syntax),
                _ => {
                    self.end_of_number()?;
                    Ok(NumLit::Int(BigInt::zero()))
                }
            };
        }
        self.decimal_tail()?;
        match self.at(self.pos) {
            Some('.') => {
                self.pos += 1;
                self.fraction(start)
            }
            Some('e' | 'E') => self.exponent(start),
            Some('j' | 'J') => self.imaginary(start),
            _ => {
                self.end_of_number()?;
                let digits: String = self.chars[start..self.pos].iter().filter(|&&d| d != '_').collect();
                if digits.len() > INT_MAX_STR_DIGITS {
                    // "Exceeds the limit (4300 digits) for integer string conversion"
                    return Err(Stop::Syntax);
                }
                Ok(NumLit::Int(BigInt::from_digits(&digits, 10)))
            }
        }
    }

    /// Digits with single underscores between them, after the first digit
    /// has been seen (`tok_decimal_tail`).
    fn decimal_tail(&mut self) -> Result<(), Stop> {
        loop {
            while self.at(self.pos).is_some_and(|d| d.is_ascii_digit()) {
                self.pos += 1;
            }
            if self.at(self.pos) != Some('_') {
                return Ok(());
            }
            self.pos += 1;
            if !self.at(self.pos).is_some_and(|d| d.is_ascii_digit()) {
                return Err(Stop::Syntax);
            }
        }
    }

    /// After the `.` of a float.
    fn fraction(&mut self, start: usize) -> Result<NumLit, Stop> {
        if self.at(self.pos).is_some_and(|d| d.is_ascii_digit()) {
            self.decimal_tail()?;
        }
        match self.at(self.pos) {
            Some('e' | 'E') => self.exponent(start),
            Some('j' | 'J') => self.imaginary(start),
            _ => {
                self.end_of_number()?;
                Ok(NumLit::Float(self.float_value(start, self.pos)?))
            }
        }
    }

    fn exponent(&mut self, start: usize) -> Result<NumLit, Stop> {
        let e_pos = self.pos;
        self.pos += 1;
        match self.at(self.pos) {
            Some('+' | '-') => {
                self.pos += 1;
                if !self.at(self.pos).is_some_and(|d| d.is_ascii_digit()) {
                    return Err(Stop::Syntax);
                }
            }
            Some(d) if d.is_ascii_digit() => {}
            _ => {
                // `1else`: the number ends before the `e` if a keyword follows.
                self.pos = e_pos;
                self.end_of_number()?;
                return self.plain_number(start, e_pos);
            }
        }
        self.decimal_tail()?;
        if matches!(self.at(self.pos), Some('j' | 'J')) {
            return self.imaginary(start);
        }
        self.end_of_number()?;
        Ok(NumLit::Float(self.float_value(start, self.pos)?))
    }

    /// A number that turned out to end early (before a keyword).
    fn plain_number(&self, start: usize, end: usize) -> Result<NumLit, Stop> {
        let text: String = self.chars[start..end].iter().filter(|&&d| d != '_').collect();
        if text.contains('.') {
            return Ok(NumLit::Float(self.float_value(start, end)?));
        }
        if text.trim_start_matches('0').len() > INT_MAX_STR_DIGITS {
            return Err(Stop::Syntax);
        }
        Ok(NumLit::Int(BigInt::from_digits(&text, 10)))
    }

    fn imaginary(&mut self, start: usize) -> Result<NumLit, Stop> {
        let j_pos = self.pos;
        self.pos += 1;
        self.end_of_number()?;
        Ok(NumLit::Imag(self.float_value(start, j_pos)?))
    }

    fn float_value(&self, start: usize, end: usize) -> Result<f64, Stop> {
        let text: String = self.chars[start..end].iter().filter(|&&d| d != '_').collect();
        // Rust's parser is correctly rounded like CPython's and also
        // overflows to infinity.
        text.parse::<f64>().map_err(|_| Stop::Syntax)
    }

    /// `verify_end_of_number`: a number may run straight into `and`,
    /// `else`, `for`, `if`, `in`, `is`, `not` or `or` (a deprecation
    /// warning), any other identifier character is a SyntaxError.
    fn end_of_number(&mut self) -> Result<(), Stop> {
        let Some(c) = self.at(self.pos) else {
            return Ok(());
        };
        let rest = |s: &str| s.chars().enumerate().all(|(i, x)| self.at(self.pos + 1 + i) == Some(x));
        let keyword = match c {
            'a' => rest("nd"),
            'e' => rest("lse"),
            'f' => rest("or"),
            'i' => matches!(self.at(self.pos + 1), Some('f' | 'n' | 's')),
            'o' => rest("r"),
            'n' => rest("ot"),
            _ => false,
        };
        if !keyword && is_identifier_char(c) {
            return Err(Stop::Syntax);
        }
        Ok(())
    }

    /// A string literal starting at the quote, `prefix` lowercased.
    fn string(&mut self, prefix: &str) -> Result<StrLit, Stop> {
        let quote = self.chars[self.pos];
        let triple = self.at(self.pos + 1) == Some(quote) && self.at(self.pos + 2) == Some(quote);
        let qlen = if triple { 3 } else { 1 };
        self.pos += qlen;
        let body_start = self.pos;
        let body_end;
        loop {
            let Some(c) = self.at(self.pos) else {
                return Err(Stop::Syntax);
            };
            if c == quote {
                if !triple {
                    body_end = self.pos;
                    self.pos += 1;
                    break;
                }
                if self.at(self.pos + 1) == Some(quote) && self.at(self.pos + 2) == Some(quote) {
                    body_end = self.pos;
                    self.pos += 3;
                    break;
                }
            } else if c == '\n' && !triple {
                return Err(Stop::Syntax);
            } else if c == '\\' {
                // A backslash always takes the next character along when
                // looking for the end, raw string or not.
                self.pos += 1;
                if self.at(self.pos).is_none() {
                    return Err(Stop::Syntax);
                }
            }
            self.pos += 1;
        }
        let body = &self.chars[body_start..body_end];
        let raw = prefix.contains('r');
        if prefix.contains('f') {
            return Ok(StrLit::FString);
        }
        if prefix.contains('b') {
            if body.iter().any(|c| !c.is_ascii()) {
                return Err(Stop::Syntax);
            }
            let bytes: Vec<u8> = body.iter().map(|&c| c as u8).collect();
            return if raw { Ok(StrLit::Bytes(bytes)) } else { decode_bytes_escapes(&bytes).map(StrLit::Bytes) };
        }
        if raw {
            return Ok(StrLit::Str(body.iter().map(|&c| c as u32).collect()));
        }
        decode_str_escapes(body).map(StrLit::Str)
    }
}

fn hex_value(cs: &[char]) -> Option<u32> {
    cs.iter().try_fold(0u32, |acc, c| Some(acc * 16 + c.to_digit(16)?))
}

/// Python's unicode-escape decoding of a str literal body.
fn decode_str_escapes(body: &[char]) -> Result<PyStr, Stop> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let c = body[i];
        if c != '\\' {
            out.push(c as u32);
            i += 1;
            continue;
        }
        let Some(&e) = body.get(i + 1) else {
            return Err(Stop::Syntax);
        };
        i += 2;
        match e {
            '\n' => {}
            '\\' | '\'' | '"' => out.push(e as u32),
            'a' => out.push(7),
            'b' => out.push(8),
            'f' => out.push(12),
            'n' => out.push(10),
            'r' => out.push(13),
            't' => out.push(9),
            'v' => out.push(11),
            '0'..='7' => {
                let mut v = e as u32 - '0' as u32;
                for _ in 0..2 {
                    match body.get(i) {
                        Some(&d @ '0'..='7') => {
                            v = v * 8 + (d as u32 - '0' as u32);
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(v);
            }
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let digits = body.get(i..i + n).ok_or(Stop::Syntax)?;
                let v = hex_value(digits).ok_or(Stop::Syntax)?;
                if v > 0x10FFFF {
                    return Err(Stop::Syntax);
                }
                out.push(v);
                i += n;
            }
            'N' => {
                // A malformed \N is a SyntaxError; a well-formed one needs
                // the Unicode name database, which is not carried here.
                if body.get(i) != Some(&'{') {
                    return Err(Stop::Syntax);
                }
                match body[i..].iter().position(|&c| c == '}') {
                    Some(len) if len > 1 => {
                        return Err(Stop::Fail(
                            "\\N{...} escapes in Python string literals are not supported".to_string(),
                        ))
                    }
                    _ => return Err(Stop::Syntax),
                }
            }
            other => {
                // Unknown escapes keep their backslash (a warning only).
                out.push('\\' as u32);
                out.push(other as u32);
            }
        }
    }
    Ok(out)
}

/// Python's escape decoding of a bytes literal body (ASCII already checked).
fn decode_bytes_escapes(body: &[u8]) -> Result<Vec<u8>, Stop> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let c = body[i];
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let Some(&e) = body.get(i + 1) else {
            return Err(Stop::Syntax);
        };
        i += 2;
        match e {
            b'\n' => {}
            b'\\' | b'\'' | b'"' => out.push(e),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(10),
            b'r' => out.push(13),
            b't' => out.push(9),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match body.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                // Octal escapes above \377 wrap (with a deprecation warning).
                out.push((v & 0xFF) as u8);
            }
            b'x' => {
                let digits: Vec<char> = body.get(i..i + 2).ok_or(Stop::Syntax)?.iter().map(|&b| b as char).collect();
                out.push(hex_value(&digits).ok_or(Stop::Syntax)? as u8);
                i += 2;
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Parser

/// The AST subset literal_eval looks at. `Malformed` stands for any other
/// expression: literal_eval raises ValueError when it reaches one, without
/// looking inside.
#[derive(Debug)]
enum Node {
    Const(PyVal),
    Tuple(Vec<Node>),
    List(Vec<Node>),
    Set(Vec<Node>),
    Dict(Vec<(Node, Node)>),
    /// `set()`
    EmptySetCall,
    /// A chain of unary `+`/`-` (true for minus), outermost first: one
    /// node for the whole chain, so long chains need no deep recursion.
    Unary {
        signs: Vec<bool>,
        operand: Box<Node>,
    },
    BinOp {
        sub: bool,
        left: Box<Node>,
        right: Box<Node>,
    },
    Malformed,
}

impl Node {
    /// Nesting depth of the AST, iteratively (unary chains can be long).
    fn depth(&self) -> usize {
        let mut max = 0;
        let mut stack = vec![(self, 1usize)];
        while let Some((n, d)) = stack.pop() {
            max = max.max(d);
            match n {
                Node::Tuple(items) | Node::List(items) | Node::Set(items) => {
                    stack.extend(items.iter().map(|i| (i, d + 1)));
                }
                Node::Dict(pairs) => {
                    for (k, v) in pairs {
                        stack.push((k, d + 1));
                        stack.push((v, d + 1));
                    }
                }
                Node::Unary { signs, operand } => stack.push((operand, d + signs.len())),
                Node::BinOp { left, right, .. } => {
                    stack.push((left, d + 1));
                    stack.push((right, d + 1));
                }
                Node::EmptySetCall => max = max.max(d + 1),
                Node::Const(_) | Node::Malformed => {}
            }
        }
        max
    }
}

struct Parser<'a> {
    tokens: &'a [Tok],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        self.tokens.get(self.pos).unwrap_or(&Tok::End)
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        self.tokens.get(self.pos + ahead).unwrap_or(&Tok::End)
    }

    fn parse_top(&mut self) -> Result<Node, Stop> {
        let (items, comma) = self.sequence(&Tok::End)?;
        if items.is_empty() {
            return Err(Stop::Syntax);
        }
        Ok(collapse(items, comma))
    }

    /// Comma-separated elements up to (not including) `close`, trailing
    /// comma allowed. Returns the elements and whether any comma was seen.
    fn sequence(&mut self, close: &Tok) -> Result<(Vec<Node>, bool), Stop> {
        let mut items = Vec::new();
        let mut comma = false;
        while self.peek() != close {
            items.push(self.element(&[Tok::Comma, close.clone()])?);
            if *self.peek() == Tok::Comma {
                self.pos += 1;
                comma = true;
            } else {
                break;
            }
        }
        if self.peek() != close {
            return Err(Stop::Syntax);
        }
        Ok((items, comma))
    }

    /// One element: a literal-subset expression if the tokens up to the
    /// next delimiter form one, else `Malformed` covering them.
    fn element(&mut self, stops: &[Tok]) -> Result<Node, Stop> {
        let start = self.pos;
        // Errors from inside are real syntax errors (an empty element, a
        // set item followed by `:`...), not just "not a literal".
        if let Some(node) = self.expr()? {
            if stops.contains(self.peek()) {
                return Ok(node);
            }
        }
        self.pos = start;
        let mut depth = 0usize;
        loop {
            let t = self.peek();
            if depth == 0 && (stops.contains(t) || *t == Tok::End) {
                break;
            }
            match t {
                Tok::Open(_) => depth += 1,
                Tok::Close(_) => {
                    if depth == 0 {
                        break;
                    }
                    depth -= 1;
                }
                Tok::End => return Err(Stop::Syntax),
                _ => {}
            }
            self.pos += 1;
        }
        if self.pos == start {
            return Err(Stop::Syntax);
        }
        Ok(Node::Malformed)
    }

    /// `term (('+'|'-') term)*`; `None` if the tokens are not of that shape.
    fn expr(&mut self) -> Result<Option<Node>, Stop> {
        let Some(mut left) = self.term()? else {
            return Ok(None);
        };
        while matches!(self.peek(), Tok::Plus | Tok::Minus) {
            let sub = *self.peek() == Tok::Minus;
            self.pos += 1;
            let Some(right) = self.term()? else {
                return Ok(None);
            };
            left = Node::BinOp { sub, left: Box::new(left), right: Box::new(right) };
        }
        Ok(Some(left))
    }

    fn term(&mut self) -> Result<Option<Node>, Stop> {
        let mut signs = Vec::new();
        while matches!(self.peek(), Tok::Plus | Tok::Minus) {
            signs.push(*self.peek() == Tok::Minus);
            self.pos += 1;
        }
        let Some(node) = self.atom()? else {
            return Ok(None);
        };
        if signs.is_empty() {
            return Ok(Some(node));
        }
        Ok(Some(Node::Unary { signs, operand: Box::new(node) }))
    }

    fn atom(&mut self) -> Result<Option<Node>, Stop> {
        let tok = self.peek().clone();
        self.pos += 1;
        let node = match tok {
            Tok::Num(NumLit::Int(i)) => Node::Const(PyVal::Int(i)),
            Tok::Num(NumLit::Float(f)) => Node::Const(PyVal::Float(f)),
            Tok::Num(NumLit::Imag(f)) => Node::Const(PyVal::Complex(0.0, f)),
            Tok::Str(first) => self.concatenate(first)?,
            Tok::True => Node::Const(PyVal::Bool(true)),
            Tok::False => Node::Const(PyVal::Bool(false)),
            Tok::None => Node::Const(PyVal::None),
            Tok::Ellipsis => Node::Const(PyVal::Ellipsis),
            Tok::SetName if *self.peek() == Tok::Open('(') && *self.peek_at(1) == Tok::Close(')') => {
                self.pos += 2;
                Node::EmptySetCall
            }
            Tok::Open('(') => {
                if *self.peek() == Tok::Close(')') {
                    self.pos += 1;
                    Node::Tuple(Vec::new())
                } else if *self.peek() == Tok::SetName && *self.peek_at(1) == Tok::Close(')') {
                    // `(set)()` is still a call of the name `set`.
                    self.pos += 2;
                    if *self.peek() == Tok::Open('(') && *self.peek_at(1) == Tok::Close(')') {
                        self.pos += 2;
                        Node::EmptySetCall
                    } else {
                        return Ok(None);
                    }
                } else {
                    let (items, comma) = self.sequence(&Tok::Close(')'))?;
                    self.pos += 1;
                    collapse(items, comma)
                }
            }
            Tok::Open('[') => {
                let (items, _) = self.sequence(&Tok::Close(']'))?;
                self.pos += 1;
                Node::List(items)
            }
            Tok::Open('{') => self.braces()?,
            _ => return Ok(None),
        };
        Ok(Some(node))
    }

    /// Adjacent string literals concatenate; mixing bytes with str is a
    /// SyntaxError, an f-string anywhere makes a JoinedStr.
    fn concatenate(&mut self, first: StrLit) -> Result<Node, Stop> {
        let mut parts = vec![first];
        while let Tok::Str(s) = self.peek() {
            parts.push(s.clone());
            self.pos += 1;
        }
        let bytes = parts.iter().filter(|p| matches!(p, StrLit::Bytes(_))).count();
        if bytes != 0 && bytes != parts.len() {
            return Err(Stop::Syntax);
        }
        if parts.contains(&StrLit::FString) {
            return Ok(Node::Malformed);
        }
        if bytes != 0 {
            let joined = parts.into_iter().flat_map(|p| if let StrLit::Bytes(b) = p { b } else { Vec::new() });
            return Ok(Node::Const(PyVal::Bytes(joined.collect())));
        }
        let joined = parts.into_iter().flat_map(|p| if let StrLit::Str(s) = p { s } else { Vec::new() });
        Ok(Node::Const(PyVal::Str(joined.collect())))
    }

    /// After `{`: a dict, a set, or something literal_eval rejects.
    fn braces(&mut self) -> Result<Node, Stop> {
        let close = Tok::Close('}');
        if *self.peek() == close {
            self.pos += 1;
            return Ok(Node::Dict(Vec::new()));
        }
        // The first element decides between a dict and a set.
        let mut first_key = None;
        if *self.peek() != Tok::DoubleStar {
            let first = self.element(&[Tok::Comma, Tok::Colon, close.clone()])?;
            if *self.peek() != Tok::Colon {
                let mut items = vec![first];
                if *self.peek() == Tok::Comma {
                    self.pos += 1;
                    items.extend(self.sequence(&close)?.0);
                }
                if *self.peek() != close {
                    return Err(Stop::Syntax);
                }
                self.pos += 1;
                return Ok(Node::Set(items));
            }
            first_key = Some(first);
        }
        let mut pairs = Vec::new();
        while *self.peek() != close {
            if let Some(key) = first_key.take() {
                self.pos += 1;
                let value = self.element(&[Tok::Comma, close.clone()])?;
                pairs.push((key, value));
            } else if *self.peek() == Tok::DoubleStar {
                // `**mapping` is a None key in the AST: ValueError when reached.
                self.pos += 1;
                self.element(&[Tok::Comma, close.clone()])?;
                pairs.push((Node::Malformed, Node::Malformed));
            } else {
                let key = self.element(&[Tok::Comma, Tok::Colon, close.clone()])?;
                if *self.peek() != Tok::Colon {
                    return Err(Stop::Syntax);
                }
                self.pos += 1;
                let value = self.element(&[Tok::Comma, close.clone()])?;
                pairs.push((key, value));
            }
            if *self.peek() == Tok::Comma {
                self.pos += 1;
            } else {
                break;
            }
        }
        if *self.peek() != close {
            return Err(Stop::Syntax);
        }
        self.pos += 1;
        Ok(Node::Dict(pairs))
    }
}

/// `(a)` is `a`; `(a,)` and `a, b` are tuples.
fn collapse(mut items: Vec<Node>, comma: bool) -> Node {
    if !comma && items.len() == 1 {
        if let Some(only) = items.pop() {
            return only;
        }
    }
    Node::Tuple(items)
}

// ---------------------------------------------------------------------------
// Evaluation, in literal_eval's order

fn evaluate(node: &Node) -> Eval<PyVal> {
    match node {
        Node::Const(v) => Eval::Value(v.clone()),
        Node::Tuple(items) => eval_all(items).map(PyVal::Tuple),
        Node::List(items) => eval_all(items).map(PyVal::List),
        Node::Set(items) => {
            let mut set = Vec::new();
            for item in items {
                let v = match evaluate(item) {
                    Eval::Value(v) => v,
                    other => return other,
                };
                if !v.is_hashable() {
                    return Eval::Fail(format!("unhashable type: '{}' in a set", v.type_name()));
                }
                if !set.iter().any(|e| py_eq(e, &v)) {
                    set.push(v);
                }
            }
            Eval::Value(PyVal::Set(set_order(set)))
        }
        Node::EmptySetCall => Eval::Value(PyVal::Set(Vec::new())),
        Node::Dict(pairs) => {
            let mut dict: Vec<(PyVal, PyVal)> = Vec::new();
            for (k, v) in pairs {
                let key = match evaluate(k) {
                    Eval::Value(v) => v,
                    other => return other,
                };
                let value = match evaluate(v) {
                    Eval::Value(v) => v,
                    other => return other,
                };
                if !key.is_hashable() {
                    return Eval::Fail(format!("unhashable type: '{}' as a dict key", key.type_name()));
                }
                match dict.iter_mut().find(|(k, _)| py_eq(k, &key)) {
                    Some(slot) => slot.1 = value,
                    None => dict.push((key, value)),
                }
            }
            Eval::Value(PyVal::Dict(dict))
        }
        Node::BinOp { sub, left, right } => {
            let (Some(l), Some(r)) = (signed_num(left), num(right)) else {
                return Eval::NotLiteral;
            };
            let (PyVal::Int(_) | PyVal::Float(_), PyVal::Complex(re, im)) = (&l, &r) else {
                return Eval::NotLiteral;
            };
            let lf = match &l {
                PyVal::Int(i) => match i.to_f64() {
                    Some(f) => f,
                    None => return Eval::Fail("int too large to convert to float".into()),
                },
                PyVal::Float(f) => *f,
                _ => return Eval::NotLiteral,
            };
            // int/float + complex promotes the left side to (x, 0.0).
            Eval::Value(if *sub { PyVal::Complex(lf - re, 0.0 - im) } else { PyVal::Complex(lf + re, 0.0 + im) })
        }
        Node::Unary { .. } => match signed_num(node) {
            Some(v) => Eval::Value(v),
            None => Eval::NotLiteral,
        },
        Node::Malformed => Eval::NotLiteral,
    }
}

fn eval_all(items: &[Node]) -> Eval<Vec<PyVal>> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match evaluate(item) {
            Eval::Value(v) => out.push(v),
            Eval::NotLiteral => return Eval::NotLiteral,
            Eval::Fail(m) => return Eval::Fail(m),
        }
    }
    Eval::Value(out)
}

/// `_convert_num`: a Constant of type int, float or complex (not bool).
fn num(node: &Node) -> Option<PyVal> {
    match node {
        Node::Const(v @ (PyVal::Int(_) | PyVal::Float(_) | PyVal::Complex(..))) => Some(v.clone()),
        _ => None,
    }
}

/// `_convert_signed_num`: one unary `+`/`-` on a number, or a number.
fn signed_num(node: &Node) -> Option<PyVal> {
    match node {
        // `--1` is a UnaryOp whose operand is a UnaryOp, not a number.
        Node::Unary { signs, operand } if signs.len() == 1 => {
            let v = num(operand)?;
            if !signs[0] {
                return Some(v);
            }
            Some(match v {
                PyVal::Int(i) => PyVal::Int(i.negate()),
                PyVal::Float(f) => PyVal::Float(-f),
                PyVal::Complex(r, i) => PyVal::Complex(-r, -i),
                other => other,
            })
        }
        Node::Unary { .. } => None,
        _ => num(node),
    }
}

// ---------------------------------------------------------------------------
// CPython set iteration order

/// Python's `hash()` where it does not depend on the process (str, bytes and
/// None hashes are randomized or address-based in CPython 3.11).
fn stable_hash(v: &PyVal) -> Option<u64> {
    Some(match v {
        PyVal::Bool(b) => u64::from(*b),
        PyVal::Int(i) => i.py_hash(),
        PyVal::Float(f) => hash_double(*f),
        PyVal::Complex(r, i) => {
            let h = hash_double(*r).wrapping_add(1_000_003u64.wrapping_mul(hash_double(*i)));
            if h == u64::MAX {
                u64::MAX - 1
            } else {
                h
            }
        }
        PyVal::Tuple(items) => {
            const P1: u64 = 11_400_714_785_074_694_791;
            const P2: u64 = 14_029_467_366_897_019_727;
            const P5: u64 = 2_870_177_450_012_600_261;
            let mut acc = P5;
            for item in items {
                let lane = stable_hash(item)?;
                acc = acc.wrapping_add(lane.wrapping_mul(P2)).rotate_left(31).wrapping_mul(P1);
            }
            acc = acc.wrapping_add((items.len() as u64) ^ (P5 ^ 3_527_539));
            if acc == u64::MAX {
                1_546_275_796
            } else {
                acc
            }
        }
        _ => return None,
    })
}

const HASH_BITS: u32 = 61;
const HASH_MODULUS: u64 = (1 << HASH_BITS) - 1;

/// `_Py_HashDouble` (NaN cannot come out of a literal).
fn hash_double(v: f64) -> u64 {
    if v.is_infinite() {
        return if v > 0.0 { 314_159 } else { 314_159u64.wrapping_neg() };
    }
    if v.is_nan() {
        return 0;
    }
    let (mut m, mut e) = frexp(v);
    let negative = m < 0.0;
    if negative {
        m = -m;
    }
    let mut x: u64 = 0;
    while m != 0.0 {
        x = ((x << 28) & HASH_MODULUS) | (x >> (HASH_BITS - 28));
        m *= 268_435_456.0;
        e -= 28;
        let y = m as u64;
        m -= y as f64;
        x += y;
        if x >= HASH_MODULUS {
            x -= HASH_MODULUS;
        }
    }
    let bits = HASH_BITS as i32;
    let e = (if e >= 0 { e % bits } else { bits - 1 - ((-1 - e) % bits) }) as u32;
    x = ((x << e) & HASH_MODULUS) | (x >> (HASH_BITS - e));
    if negative {
        x = x.wrapping_neg();
    }
    if x == u64::MAX {
        u64::MAX - 1
    } else {
        x
    }
}

/// C's `frexp`: `v == m * 2^e` with `0.5 <= |m| < 1`.
fn frexp(v: f64) -> (f64, i32) {
    if v == 0.0 || !v.is_finite() {
        return (v, 0);
    }
    let bits = v.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    if exp == 0 {
        let (m, e) = frexp(v * f64::from_bits(0x4350_0000_0000_0000)); // 2^54
        return (m, e - 54);
    }
    let m = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (m, exp - 1022)
}

/// Orders unique set elements the way iterating a CPython 3.11 set built by
/// adding them one by one does, when every hash is reproducible; otherwise
/// (str, bytes, None inside) Ansible's own order changes from run to run
/// and insertion order is as good as any.
fn set_order(items: Vec<PyVal>) -> Vec<PyVal> {
    let Some(hashes) = items.iter().map(stable_hash).collect::<Option<Vec<u64>>>() else {
        return items;
    };
    const LINEAR_PROBES: usize = 9;
    const PERTURB_SHIFT: u32 = 5;
    fn insert(table: &mut [Option<(usize, u64)>], idx: usize, hash: u64) {
        let mask = table.len() - 1;
        let mut perturb = hash;
        let mut i = (hash as usize) & mask;
        loop {
            let probes = if i + LINEAR_PROBES <= mask { LINEAR_PROBES } else { 0 };
            if let Some(slot) = table[i..=i + probes].iter_mut().find(|s| s.is_none()) {
                *slot = Some((idx, hash));
                return;
            }
            perturb >>= PERTURB_SHIFT;
            i = (i.wrapping_mul(5).wrapping_add(1).wrapping_add(perturb as usize)) & mask;
        }
    }
    let mut table: Vec<Option<(usize, u64)>> = vec![None; 8];
    let mut used = 0usize;
    for (idx, &hash) in hashes.iter().enumerate() {
        insert(&mut table, idx, hash);
        used += 1;
        let mask = table.len() - 1;
        if used * 5 >= mask * 3 {
            let minused = if used > 50_000 { used * 2 } else { used * 4 };
            let mut size = 8;
            while size <= minused {
                size <<= 1;
            }
            let old = std::mem::replace(&mut table, vec![None; size]);
            for (i, h) in old.into_iter().flatten() {
                insert(&mut table, i, h);
            }
        }
    }
    let mut slots: Vec<Option<PyVal>> = items.into_iter().map(Some).collect();
    table.into_iter().flatten().filter_map(|(i, _)| slots.get_mut(i).and_then(Option::take)).collect()
}

// ---------------------------------------------------------------------------
// What Ansible keeps and ansible-inventory prints

fn to_json(v: &PyVal, depth: usize) -> Result<Value, Fail> {
    if depth > MAX_VALUE_DEPTH && matches!(v, PyVal::Tuple(_) | PyVal::List(_) | PyVal::Set(_) | PyVal::Dict(_)) {
        return Err(format!("value nests more than {MAX_VALUE_DEPTH} levels deep (RecursionError in Ansible)"));
    }
    Ok(match v {
        PyVal::None => Value::Null,
        PyVal::Bool(b) => Value::Bool(*b),
        PyVal::Int(i) => match i.to_i64() {
            Some(n) => Value::from(n),
            None => return Err(format!("integer {} does not fit in 64 bits", i.to_decimal_limited())),
        },
        PyVal::Float(f) => match Number::from_f64(*f) {
            Some(n) => Value::Number(n),
            None => return Err(format!("float {} cannot be stored as JSON", py_float_repr(*f, true))),
        },
        // `str(complex)` and `"..."`, marked trusted like any other string.
        PyVal::Complex(r, i) => Value::String(complex_repr(*r, *i)),
        PyVal::Ellipsis => Value::String("...".into()),
        PyVal::Str(s) => Value::String(printable(s)),
        // to_text(bytes) is not trusted as a template: ansible-inventory
        // prints it wrapped.
        PyVal::Bytes(b) => {
            let mut m = Map::new();
            m.insert("__ansible_unsafe".into(), Value::String(bytes_text(b)));
            Value::Object(m)
        }
        PyVal::Tuple(items) | PyVal::List(items) | PyVal::Set(items) => {
            Value::Array(items.iter().map(|i| to_json(i, depth + 1)).collect::<Result<_, _>>()?)
        }
        // Non-string keys (`{1: 'a'}`) stay typed in a `__craton_map`.
        PyVal::Dict(pairs) => {
            let mut m = Vec::with_capacity(pairs.len());
            for (k, v) in pairs {
                let text = json_key(k)?;
                let key = match k {
                    PyVal::None => Value::Null,
                    PyVal::Bool(b) => Value::Bool(*b),
                    PyVal::Int(i) => i.to_i64().map_or(Value::String(text), Value::from),
                    PyVal::Float(f) => Number::from_f64(*f).map_or(Value::String(text), Value::Number),
                    _ => Value::String(text),
                };
                m.push((key, to_json(v, depth + 1)?));
            }
            crate::typed::mapping(m)
        }
    })
}

/// How a dict key reaches the JSON output: complex and `...` keys cannot be
/// tagged with an origin (the parse fails), tuple and bytes keys make the
/// encoder fail, numbers and None go through `json.dumps`.
fn json_key(k: &PyVal) -> Result<String, Fail> {
    Ok(match k {
        PyVal::Str(s) => printable(s),
        PyVal::None => "null".into(),
        PyVal::Bool(b) => if *b { "true" } else { "false" }.into(),
        PyVal::Int(i) => {
            i.to_decimal_checked().ok_or_else(|| format!("dict key has more than {INT_MAX_STR_DIGITS} digits"))?
        }
        PyVal::Float(f) if f.is_nan() => "NaN".into(),
        PyVal::Float(f) if f.is_infinite() => if *f > 0.0 { "Infinity" } else { "-Infinity" }.into(),
        PyVal::Float(f) => py_float_repr(*f, true),
        PyVal::Complex(..) => return Err("a complex number cannot be a dict key (not taggable)".into()),
        PyVal::Ellipsis => return Err("Ellipsis cannot be a dict key (not taggable)".into()),
        PyVal::Tuple(_) => return Err("a tuple dict key is not JSON serializable".into()),
        PyVal::Bytes(_) => return Err("a bytes dict key is not JSON serializable".into()),
        PyVal::List(_) | PyVal::Set(_) | PyVal::Dict(_) => return Err("unhashable dict key".into()),
    })
}

/// A str as written to stdout by Ansible's display, whose encoding error
/// handler turns each run of lone surrogates into one `?`.
fn printable(s: &[u32]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_run = false;
    for &cp in s {
        match char::from_u32(cp) {
            Some(c) => {
                out.push(c);
                in_run = false;
            }
            None => {
                if !in_run {
                    out.push('?');
                }
                in_run = true;
            }
        }
    }
    out
}

/// `to_text(b, errors='surrogate_or_strict')` (surrogateescape for bytes
/// that are not UTF-8), then printed as above.
fn bytes_text(b: &[u8]) -> String {
    let mut cps: Vec<u32> = Vec::with_capacity(b.len());
    let mut rest = b;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                cps.extend(s.chars().map(|c| c as u32));
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                cps.extend(String::from_utf8_lossy(good).chars().map(|c| c as u32));
                let n = e.error_len().unwrap_or(bad.len()).max(1);
                cps.extend(bad[..n].iter().map(|&x| 0xDC00 + u32::from(x)));
                rest = &bad[n..];
            }
        }
    }
    printable(&cps)
}

/// `repr(float)` (with `.0`) or the `'r'` format without it, as used by
/// `complex.__repr__`.
fn py_float_repr(f: f64, add_dot_0: bool) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    // Rust's `{:e}` gives the same shortest round-trip digits as Python.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let decpt = exp + 1;
    if !(-4 < decpt && decpt <= 16) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.abs());
    }
    let n = digits.len() as i32;
    let body = if decpt <= 0 {
        format!("0.{}{digits}", "0".repeat((-decpt) as usize))
    } else if decpt >= n {
        let zeros = "0".repeat((decpt - n) as usize);
        if add_dot_0 {
            format!("{digits}{zeros}.0")
        } else {
            format!("{digits}{zeros}")
        }
    } else {
        let (int_part, frac) = digits.split_at(decpt as usize);
        format!("{int_part}.{frac}")
    };
    format!("{sign}{body}")
}

/// `complex.__repr__`.
fn complex_repr(re: f64, im: f64) -> String {
    let signed = |f: f64| {
        let r = py_float_repr(f, false);
        if r.starts_with('-') {
            r
        } else {
            format!("+{r}")
        }
    };
    if re == 0.0 && re.is_sign_positive() {
        format!("{}j", py_float_repr(im, false))
    } else {
        format!("({}{}j)", py_float_repr(re, false), signed(im))
    }
}

// ---------------------------------------------------------------------------
// Arbitrary-size integers, as far as literals need them

/// Sign and magnitude (little-endian base 2^32, no high zero limbs).
#[derive(Debug, Clone, PartialEq, Eq)]
struct BigInt {
    neg: bool,
    mag: Vec<u32>,
}

impl BigInt {
    fn zero() -> Self {
        BigInt { neg: false, mag: Vec::new() }
    }

    fn from_u64(v: u64) -> Self {
        let mut b = BigInt { neg: false, mag: vec![v as u32, (v >> 32) as u32] };
        b.trim();
        b
    }

    fn trim(&mut self) {
        while self.mag.last() == Some(&0) {
            self.mag.pop();
        }
        if self.mag.is_empty() {
            self.neg = false;
        }
    }

    /// ASCII digits of `radix` (the tokenizer checked them).
    fn from_digits(digits: &str, radix: u32) -> Self {
        let mut b = BigInt::zero();
        for c in digits.chars() {
            let d = c.to_digit(radix).unwrap_or(0);
            b.mul_add(radix, d);
        }
        b.trim();
        b
    }

    fn mul_add(&mut self, mul: u32, add: u32) {
        let mut carry = u64::from(add);
        for limb in &mut self.mag {
            let v = u64::from(*limb) * u64::from(mul) + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.mag.push(carry as u32);
        }
    }

    /// Divides the magnitude in place, returning the remainder.
    fn div_rem_small(&mut self, div: u32) -> u32 {
        let mut rem = 0u64;
        for limb in self.mag.iter_mut().rev() {
            let v = (rem << 32) | u64::from(*limb);
            *limb = (v / u64::from(div)) as u32;
            rem = v % u64::from(div);
        }
        let neg = self.neg;
        self.trim();
        self.neg = neg && !self.mag.is_empty();
        rem as u32
    }

    fn negate(&self) -> Self {
        let mut b = self.clone();
        b.neg = !b.neg && !b.mag.is_empty();
        b
    }

    fn to_i64(&self) -> Option<i64> {
        if self.mag.len() > 2 {
            return None;
        }
        let m = self.mag.iter().rev().fold(0u64, |acc, &l| (acc << 32) | u64::from(l));
        if self.neg {
            if m <= 1 << 63 {
                Some((m as i64).wrapping_neg())
            } else {
                None
            }
        } else {
            i64::try_from(m).ok()
        }
    }

    fn to_decimal(&self) -> String {
        if self.mag.is_empty() {
            return "0".into();
        }
        let mut m = BigInt { neg: false, mag: self.mag.clone() };
        let mut chunks = Vec::new();
        while !m.mag.is_empty() {
            chunks.push(m.div_rem_small(1_000_000_000));
        }
        let mut s = String::new();
        if self.neg {
            s.push('-');
        }
        let mut iter = chunks.iter().rev();
        if let Some(first) = iter.next() {
            s.push_str(&first.to_string());
        }
        for c in iter {
            s.push_str(&format!("{c:09}"));
        }
        s
    }

    /// `str(int)`, which refuses more than 4300 digits.
    fn to_decimal_checked(&self) -> Option<String> {
        // Anything over 460 limbs has more than 4400 digits.
        if self.mag.len() > 460 {
            return None;
        }
        let s = self.to_decimal();
        (s.trim_start_matches('-').len() <= INT_MAX_STR_DIGITS).then_some(s)
    }

    fn to_decimal_limited(&self) -> String {
        self.to_decimal_checked().unwrap_or_else(|| "with more than 4300 digits".into())
    }

    /// `float(int)`, correctly rounded; `None` is Python's OverflowError.
    fn to_f64(&self) -> Option<f64> {
        let f: f64 = self.to_decimal().parse().ok()?;
        f.is_finite().then_some(f)
    }

    /// `hash(int)`.
    fn py_hash(&self) -> u64 {
        let r = self.mag.iter().rev().fold(0u128, |acc, &l| ((acc << 32) | u128::from(l)) % u128::from(HASH_MODULUS))
            as u64;
        let h = if self.neg { r.wrapping_neg() } else { r };
        if h == u64::MAX {
            u64::MAX - 1
        } else {
            h
        }
    }

    /// `int == float`, exactly.
    fn eq_f64(&self, f: f64) -> bool {
        if !f.is_finite() || f.fract() != 0.0 {
            return false;
        }
        if f == 0.0 {
            return self.mag.is_empty();
        }
        if (f < 0.0) != self.neg {
            return false;
        }
        let (m, e) = frexp(f.abs());
        // f = mant * 2^(e - 53) with a 53-bit integer mantissa.
        let mant = (m * (1u64 << 53) as f64) as u64;
        let shift = e - 53;
        let mut expect = BigInt::from_u64(mant);
        if shift >= 0 {
            for _ in 0..shift {
                expect.mul_add(2, 0);
            }
        } else {
            for _ in 0..(-shift) {
                expect.div_rem_small(2);
            }
        }
        expect.mag == self.mag
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pv(s: &str) -> Value {
        parse_value(s).unwrap()
    }

    /// literal_eval refused it: the text itself is the value.
    fn kept(s: &str) {
        assert_eq!(pv(s), Value::String(s.to_string()), "{s:?}");
    }

    #[test]
    fn numbers() {
        assert_eq!(pv("1"), json!(1));
        assert_eq!(pv(" 1 # comment"), json!(1));
        assert_eq!(pv("0x1F"), json!(31));
        assert_eq!(pv("0o17"), json!(15));
        assert_eq!(pv("0b11"), json!(3));
        assert_eq!(pv("1_000"), json!(1000));
        assert_eq!(pv("-9223372036854775808"), json!(i64::MIN));
        assert_eq!(pv("1e3"), json!(1000.0));
        assert_eq!(pv("-0.0").to_string(), "-0.0");
        assert_eq!(pv(".5"), json!(0.5));
        assert_eq!(pv("01.5"), json!(1.5));
        assert_eq!(pv("+1"), json!(1));
        for s in ["01", "1__0", "1_", "0x", "1e", "1 + 1", "--1", "-True", "1L", "1abc"] {
            kept(s);
        }
        assert!(parse_value("9223372036854775808").is_err());
        assert!(parse_value("1e999").is_err());
        // Over 4300 digits is a SyntaxError, so the text stays.
        kept(&"1".repeat(4301));
    }

    #[test]
    fn complex_numbers_become_their_str() {
        assert_eq!(pv("1j"), json!("1j"));
        assert_eq!(pv("1+2j"), json!("(1+2j)"));
        assert_eq!(pv("-1j"), json!("(-0-1j)"));
        assert_eq!(pv("(-1.5)-0j"), json!("(-1.5+0j)"));
        assert_eq!(pv("1e999j"), json!("infj"));
        assert_eq!(pv("1e16+1e-5j"), json!("(1e+16+1e-05j)"));
        kept("1j+1");
        kept("1+2j+3j");
        kept("-(1+2j)");
    }

    #[test]
    fn constants_and_names() {
        assert_eq!(pv("True"), json!(true));
        assert_eq!(pv("None"), Value::Null);
        assert_eq!(pv("..."), json!("..."));
        for s in ["yes", "true", "x", "not 1", "~1", "1 if 1 else 2", "Ellipsis", "", " ", "# c"] {
            kept(s);
        }
    }

    #[test]
    fn strings() {
        assert_eq!(pv("\"1\""), json!("1"));
        assert_eq!(pv("'a' \"b\" u'c'"), json!("abc"));
        assert_eq!(pv(r"'\x41\u00e9\U0001F600\101\n\q'"), json!("Aé😀A\n\\q"));
        assert_eq!(pv(r"r'\n'"), json!("\\n"));
        assert_eq!(pv("'''a'b'''"), json!("a'b"));
        // A lone surrogate is printed as "?" by Ansible's display.
        assert_eq!(pv(r"'\ud83d\ude00x'"), json!("?x"));
        kept(r"'\x4'");
        kept("'a' b'b'");
        kept("f'x'");
        kept("'unterminated");
        kept("b'é'");
        assert!(parse_value(r"'\N{EN DASH}'").is_err());
    }

    #[test]
    fn bytes_are_untrusted_strings() {
        assert_eq!(pv("b'abc'"), json!({"__ansible_unsafe": "abc"}));
        assert_eq!(pv(r"b'\xe2\x82\xac'"), json!({"__ansible_unsafe": "€"}));
        assert_eq!(pv(r"b'\xff\xfea\xff'"), json!({"__ansible_unsafe": "?a?"}));
        assert_eq!(pv("[b'x']"), json!([{"__ansible_unsafe": "x"}]));
    }

    #[test]
    fn containers() {
        assert_eq!(pv("[1, (2, 3),]"), json!([1, [2, 3]]));
        assert_eq!(pv("1, 2"), json!([1, 2]));
        assert_eq!(pv("()"), json!([]));
        assert_eq!(pv("{'a': {'b': None}}"), json!({"a": {"b": null}}));
        kept("[1, x]");
        kept("[1,,2]");
        kept("{1:}");
        kept("[*[1]]");
        kept("{**{}}");
        kept("[1][0]");
        kept(&format!("{}{}", "[".repeat(201), "]".repeat(201)));
        assert!(parse_value(&format!("{}{}", "[".repeat(200), "]".repeat(200))).is_err());
    }

    #[test]
    fn sets_follow_cpython_order_where_it_is_stable() {
        assert_eq!(pv("{10, 2, 1, 3, -1}"), json!([1, 2, 3, 10, -1]));
        assert_eq!(pv("{1.5, 2.5, -0.5}"), json!([-0.5, 1.5, 2.5]));
        assert_eq!(pv("{True, 1, 1.0}"), json!([true]));
        assert_eq!(pv("set()"), json!([]));
        assert_eq!(pv("(set)()"), json!([]));
        assert_eq!(pv("ｓｅｔ()"), json!([]));
        kept("set([])");
        assert_eq!(pv("{'b', 'a', 'b'}").as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn dict_keys_are_printed_like_json_dumps() {
        let plain = |s: &str| crate::typed::to_plain(&pv(s));
        assert_eq!(pv("{1.5: 'x', True: 1, None: 2}"), json!({"__craton_map": [[1.5, "x"], [true, 1], [null, 2]]}));
        assert_eq!(plain("{1.5: 'x', True: 1, None: 2}"), json!({"1.5": "x", "true": 1, "null": 2}));
        assert_eq!(plain("{1: 'a', True: 'b'}"), json!({"1": "b"}));
        assert_eq!(plain("{1e16: 1, 1e-5: 2, -0.0: 3}"), json!({"1e+16": 1, "1e-05": 2, "-0.0": 3}));
        assert_eq!(pv("{1e999: 1}"), json!({"Infinity": 1}));
        // Beyond 64 bits a key is kept as the text json.dumps prints.
        assert_eq!(pv("{99999999999999999999: 1}"), json!({"99999999999999999999": 1}));
        assert_eq!(pv("{'a': 1}"), json!({"a": 1}));
        for bad in ["{(1, 2): 3}", "{b'k': 1}", "{1j: 1}", "{...: 1}"] {
            assert!(parse_value(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn type_errors_fail_the_parse_in_evaluation_order() {
        assert!(parse_value("{[]: 1}").is_err());
        assert!(parse_value("{[1]: 2, x: 3}").is_err());
        assert!(parse_value("{[1], x}").is_err());
        assert!(parse_value("{set(): 1}").is_err());
        kept("{[1]: x}");
        kept("{x, [1]}");
        kept("[{-0.0, set()}, () set()]");
        assert!(parse_value("99999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999+1j").is_err());
    }

    #[test]
    fn python_parser_limits() {
        kept(&format!("{}1", "-".repeat(2953)));
        assert!(parse_value(&format!("{}1", "-".repeat(2954))).is_err());
        assert!(parse_value(&format!("{}1{}", "[-".repeat(200), "]".repeat(200))).is_err());
        kept("1\n 2");
        assert_eq!(pv("\n1\n"), json!(1));
        assert_eq!(pv("[1,\n2]"), json!([1, 2]));
        kept("1\\\n");
        kept("a\0");
    }

    #[test]
    fn float_repr_matches_python() {
        for (f, s) in
            [(1e16, "1e+16"), (1e15, "1000000000000000.0"), (1e-5, "1e-05"), (0.0001, "0.0001"), (1.5e300, "1.5e+300")]
        {
            assert_eq!(py_float_repr(f, true), s);
        }
        assert_eq!(hash_double(1.5), 1_152_921_504_606_846_977);
        assert_eq!(stable_hash(&PyVal::Int(BigInt::from_u64(1).negate())), Some((-2i64) as u64));
    }
}
