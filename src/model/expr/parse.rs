//! Tokenizer and precedence-climbing parser shared by every vendor expression syntax.
//!
//! One grammar covers old Alibaba FDL mappings, Alibaba CloudFlow expressions and Huawei
//! JSONPath arguments and conditions; a [`Syntax`] only says how `$name` roots are spelt.
//! Paths are scanned character by character right after their root (no spaces inside a
//! path outside brackets); everything else is tokenized.
//!
//! Precedence, loosest first: `|` (fallback), `||`, `&&`, `== != =~`, `< <= > >= in nin`,
//! `+ -`, `* / %`, prefix `! -`, then path steps.

use std::fmt;

use serde_json::{Map, Number, Value};

use super::ast::{
    is_name_char, BinaryOp, Node, RegexLit, Root, Segment, Selector, UnaryOp, COALESCE_PRECEDENCE,
};
use super::functions::Func;
use super::vars::Var;
use super::Expr;

/// How a vendor spells path roots: `$<name>` is looked up in `roots` (case-sensitive), and a
/// `$` not followed by a name (as in `$.a` or `$[0]`) means `bare_dollar`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syntax {
    /// Root names (without the `$`) and the variable each reads.
    pub roots: &'static [(&'static str, Var)],
    /// What a bare `$` reads; `None` makes a bare `$` a parse error.
    pub bare_dollar: Option<Var>,
}

/// The canonical syntax: `$input $result $scope_input $scope_local $context $global $const
/// $item $index`, and a bare `$` meaning `$input`.
pub const CANONICAL: Syntax = Syntax {
    roots: &[
        ("input", Var::Input),
        ("result", Var::Result),
        ("scope_input", Var::ScopeInput),
        ("scope_local", Var::ScopeLocal),
        ("context", Var::Context),
        ("global", Var::Global),
        ("const", Var::Const),
        ("item", Var::Item),
        ("index", Var::Index),
    ],
    bare_dollar: Some(Var::Input),
};

/// A syntax error with the byte offset where it was detected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset into the expression text.
    pub offset: usize,
    /// What was wrong, e.g. `expected ')' but found end of input`.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at offset {}: {}", self.offset, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Most levels of nested built-in calls (CloudFlow's documented limit).
pub const MAX_CALL_DEPTH: usize = 10;
/// Most levels of nesting of any kind (parentheses, operators, literals, filters).
const MAX_DEPTH: usize = 64;

/// Parses `text` with `syntax`. The resulting [`Expr`] keeps `text` (trimmed) as its canonical
/// text when `syntax` is [`CANONICAL`]; otherwise its text is the canonical rendering.
pub fn parse(text: &str, syntax: &Syntax) -> Result<Expr, ParseError> {
    let mut p = Parser {
        src: text,
        pos: 0,
        syntax,
        peeked: None,
        depth: 0,
        call_depth: 0,
        filter_depth: 0,
    };
    let node = p.parse_expr()?;
    let (tok, at) = p.next()?;
    if tok != Tok::Eof {
        return Err(err(
            at,
            format!(
                "expected an operator or end of input but found {}",
                tok.describe()
            ),
        ));
    }
    Ok(if *syntax == CANONICAL {
        Expr::with_text(text.trim().to_string(), node)
    } else {
        Expr::from_node(node)
    })
}

fn err(offset: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        offset,
        message: message.into(),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Eof,
    Num(Value),
    Str(String),
    Ident(String),
    /// `$` and the name right after it (empty for a bare `$`).
    Dollar(String),
    At,
    Sym(&'static str),
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Eof => "end of input".into(),
            Tok::Num(n) => format!("number {n}"),
            Tok::Str(s) => format!("string {}", Value::String(s.clone())),
            Tok::Ident(s) => format!("'{s}'"),
            Tok::Dollar(s) => format!("'${s}'"),
            Tok::At => "'@'".into(),
            Tok::Sym(s) => format!("'{s}'"),
        }
    }
}

/// Multi-character symbols first so that `||` is never read as two `|`.
const SYMBOLS: &[&str] = &[
    "==", "!=", "<=", ">=", "&&", "||", "=~", "(", ")", "[", "]", "{", "}", ",", ":", "<", ">",
    "!", "|", "+", "-", "*", "/", "%", "?", ".",
];

/// An infix operator: the fallback `|` or a binary operator.
#[derive(Clone, Copy)]
enum Infix {
    Coalesce,
    Bin(BinaryOp),
}

struct Parser<'s> {
    src: &'s str,
    pos: usize,
    syntax: &'s Syntax,
    peeked: Option<(Tok, usize)>,
    depth: usize,
    call_depth: usize,
    filter_depth: usize,
}

impl Parser<'_> {
    // ----- characters -----

    fn cur(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn char_at(&self, offset: usize) -> Option<char> {
        self.src.get(offset..).and_then(|s| s.chars().next())
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.cur()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_ws(&mut self) {
        while self.cur().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &str {
        let start = self.pos;
        while self.cur().is_some_and(&f) {
            self.bump();
        }
        &self.src[start..self.pos]
    }

    fn describe_char(&self) -> String {
        match self.cur() {
            None => "end of input".into(),
            Some(c) => format!("'{c}'"),
        }
    }

    // ----- tokens -----

    fn lex(&mut self) -> Result<(Tok, usize), ParseError> {
        self.skip_ws();
        let start = self.pos;
        let Some(c) = self.cur() else {
            return Ok((Tok::Eof, start));
        };
        let tok = match c {
            '"' | '\'' | '`' => Tok::Str(self.lex_string()?),
            '0'..='9' => Tok::Num(self.lex_number()?),
            '$' => {
                self.bump();
                Tok::Dollar(self.take_while(is_name_char).to_string())
            }
            '@' => {
                self.bump();
                Tok::At
            }
            c if c.is_alphabetic() || c == '_' => {
                Tok::Ident(self.take_while(is_name_char).to_string())
            }
            _ => {
                let rest = &self.src[start..];
                let Some(sym) = SYMBOLS.iter().find(|s| rest.starts_with(**s)) else {
                    return Err(err(
                        start,
                        match c {
                            '=' => "unexpected '='; use '==' to compare".to_string(),
                            '&' => "unexpected '&'; use '&&' for logical and".to_string(),
                            c => format!("unexpected character '{c}'"),
                        },
                    ));
                };
                self.pos += sym.len();
                Tok::Sym(sym)
            }
        };
        Ok((tok, start))
    }

    fn peek(&mut self) -> Result<&Tok, ParseError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lex()?);
        }
        Ok(&self.peeked.as_ref().expect("just filled").0)
    }

    fn peek_start(&mut self) -> Result<usize, ParseError> {
        self.peek()?;
        Ok(self.peeked.as_ref().expect("just filled").1)
    }

    fn next(&mut self) -> Result<(Tok, usize), ParseError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lex(),
        }
    }

    fn expect(&mut self, sym: &'static str) -> Result<usize, ParseError> {
        let (tok, at) = self.next()?;
        if tok == Tok::Sym(sym) {
            Ok(at)
        } else {
            Err(err(
                at,
                format!("expected '{sym}' but found {}", tok.describe()),
            ))
        }
    }

    /// A string literal at `pos`: `"..."` and `'...'` with JSON escapes (plus `\'`),
    /// or a raw `` `...` `` string without escapes.
    fn lex_string(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        let quote = self.bump().expect("caller saw a quote");
        let mut out = String::new();
        loop {
            let at = self.pos;
            match self.bump() {
                None => return Err(err(start, "unterminated string literal")),
                Some(c) if c == quote => return Ok(out),
                Some('\\') if quote != '`' => {
                    let e = self
                        .bump()
                        .ok_or_else(|| err(start, "unterminated string literal"))?;
                    out.push(match e {
                        '"' | '\'' | '\\' | '/' => e,
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        'u' => self.lex_unicode_escape(at)?,
                        other => {
                            return Err(err(at, format!("invalid escape '\\{other}' in string")))
                        }
                    });
                }
                Some(c) => out.push(c),
            }
        }
    }

    /// The `XXXX` (and a following `\uXXXX` low surrogate) of a `\u` escape starting at `at`.
    fn lex_unicode_escape(&mut self, at: usize) -> Result<char, ParseError> {
        let hex4 = |p: &mut Self| -> Result<u32, ParseError> {
            let digits = p.src.get(p.pos..p.pos + 4).unwrap_or("");
            let v = (digits.len() == 4 && digits.chars().all(|c| c.is_ascii_hexdigit()))
                .then(|| u32::from_str_radix(digits, 16).ok())
                .flatten()
                .ok_or_else(|| err(at, "'\\u' must be followed by four hex digits"))?;
            p.pos += 4;
            Ok(v)
        };
        let hi = hex4(self)?;
        let code = if (0xD800..0xDC00).contains(&hi) {
            if !self.src[self.pos..].starts_with("\\u") {
                return Err(err(at, "unpaired surrogate in '\\u' escape"));
            }
            self.pos += 2;
            let lo = hex4(self)?;
            if !(0xDC00..0xE000).contains(&lo) {
                return Err(err(at, "unpaired surrogate in '\\u' escape"));
            }
            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
        } else {
            hi
        };
        char::from_u32(code).ok_or_else(|| err(at, "invalid '\\u' escape"))
    }

    /// `digits [. digits] [e [+-] digits]`; integers stay integers when they fit.
    fn lex_number(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        self.take_while(|c| c.is_ascii_digit());
        let mut float = false;
        if self.cur() == Some('.')
            && self
                .char_at(self.pos + 1)
                .is_some_and(|c| c.is_ascii_digit())
        {
            float = true;
            self.bump();
            self.take_while(|c| c.is_ascii_digit());
        }
        if matches!(self.cur(), Some('e' | 'E')) {
            let save = self.pos;
            self.bump();
            if matches!(self.cur(), Some('+' | '-')) {
                self.bump();
            }
            if self.take_while(|c| c.is_ascii_digit()).is_empty() {
                return Err(err(save, "expected digits in the number's exponent"));
            }
            float = true;
        }
        let text = &self.src[start..self.pos];
        if !float {
            if let Ok(i) = text.parse::<i64>() {
                return Ok(Value::from(i));
            }
            if let Ok(u) = text.parse::<u64>() {
                return Ok(Value::from(u));
            }
        }
        text.parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| err(start, format!("number {text} is out of range")))
    }

    // ----- expressions -----

    fn parse_expr(&mut self) -> Result<Node, ParseError> {
        self.parse_binary(COALESCE_PRECEDENCE)
    }

    fn peek_infix(&mut self) -> Result<Option<(Infix, u8)>, ParseError> {
        let infix = match self.peek()? {
            Tok::Sym("|") => Infix::Coalesce,
            Tok::Sym(s) => match *s {
                "||" => Infix::Bin(BinaryOp::Or),
                "&&" => Infix::Bin(BinaryOp::And),
                "==" => Infix::Bin(BinaryOp::Eq),
                "!=" => Infix::Bin(BinaryOp::Ne),
                "=~" => Infix::Bin(BinaryOp::RegexMatch),
                "<" => Infix::Bin(BinaryOp::Lt),
                "<=" => Infix::Bin(BinaryOp::Le),
                ">" => Infix::Bin(BinaryOp::Gt),
                ">=" => Infix::Bin(BinaryOp::Ge),
                "+" => Infix::Bin(BinaryOp::Add),
                "-" => Infix::Bin(BinaryOp::Sub),
                "*" => Infix::Bin(BinaryOp::Mul),
                "/" => Infix::Bin(BinaryOp::Div),
                "%" => Infix::Bin(BinaryOp::Mod),
                _ => return Ok(None),
            },
            Tok::Ident(s) => match s.as_str() {
                "in" => Infix::Bin(BinaryOp::In),
                "nin" | "not" => Infix::Bin(BinaryOp::NotIn),
                "and" => Infix::Bin(BinaryOp::And),
                "or" => Infix::Bin(BinaryOp::Or),
                _ => return Ok(None),
            },
            _ => return Ok(None),
        };
        let prec = match infix {
            Infix::Coalesce => COALESCE_PRECEDENCE,
            Infix::Bin(op) => op.precedence(),
        };
        Ok(Some((infix, prec)))
    }

    fn parse_binary(&mut self, min_prec: u8) -> Result<Node, ParseError> {
        let mut left = self.parse_unary()?;
        while let Some((infix, prec)) = self.peek_infix()? {
            if prec < min_prec {
                break;
            }
            let (tok, _) = self.next()?;
            if tok == Tok::Ident("not".into()) {
                let (t, at) = self.next()?;
                if t != Tok::Ident("in".into()) {
                    return Err(err(
                        at,
                        format!("expected 'in' after 'not' but found {}", t.describe()),
                    ));
                }
            }
            let right_at = self.peek_start()?;
            let right = self.parse_binary(prec + 1)?;
            left = match infix {
                Infix::Coalesce => Node::Coalesce(Box::new(left), Box::new(right)),
                Infix::Bin(op) => {
                    let right = if op == BinaryOp::RegexMatch {
                        literal_regex(right, right_at)?
                    } else {
                        right
                    };
                    Node::Binary {
                        op,
                        left: Box::new(left),
                        right: Box::new(right),
                    }
                }
            };
        }
        Ok(left)
    }

    fn parse_unary(&mut self) -> Result<Node, ParseError> {
        let at = self.peek_start()?;
        if self.depth >= MAX_DEPTH {
            return Err(err(
                at,
                format!("expression nested more than {MAX_DEPTH} levels deep"),
            ));
        }
        self.depth += 1;
        let result = self.parse_unary_inner();
        self.depth -= 1;
        result
    }

    fn parse_unary_inner(&mut self) -> Result<Node, ParseError> {
        let op = match self.peek()? {
            Tok::Sym("!") => Some(UnaryOp::Not),
            Tok::Ident(s) if s == "not" => Some(UnaryOp::Not),
            Tok::Sym("-") => Some(UnaryOp::Neg),
            _ => None,
        };
        let Some(op) = op else {
            return self.parse_primary();
        };
        self.next()?;
        let operand = self.parse_unary()?;
        Ok(match (op, operand) {
            (UnaryOp::Neg, Node::Literal(Value::Number(n))) => Node::Literal(negate_literal(&n)),
            (op, operand) => Node::Unary(op, Box::new(operand)),
        })
    }

    fn parse_primary(&mut self) -> Result<Node, ParseError> {
        let (tok, at) = self.next()?;
        match tok {
            Tok::Num(v) => Ok(Node::Literal(v)),
            Tok::Str(s) => Ok(Node::Literal(Value::String(s))),
            Tok::Ident(name) => match name.as_str() {
                "true" => Ok(Node::Literal(Value::Bool(true))),
                "false" => Ok(Node::Literal(Value::Bool(false))),
                "null" | "nil" => Ok(Node::Literal(Value::Null)),
                _ if self.peek()? == &Tok::Sym("(") => self.parse_call(&name, at),
                _ => Err(err(
                    at,
                    format!(
                        "unknown identifier '{name}' (paths start with '$', function calls need '(')"
                    ),
                )),
            },
            Tok::Dollar(name) => {
                let var = self.resolve_root(&name, at)?;
                self.parse_path(Root::Var(var))
            }
            Tok::At => {
                if self.filter_depth == 0 {
                    return Err(err(at, "'@' is only allowed inside a filter '[?(...)]'"));
                }
                self.parse_path(Root::Current)
            }
            Tok::Sym("(") => {
                let inner = self.parse_expr()?;
                self.expect(")")?;
                Ok(inner)
            }
            Tok::Sym("[") => self.parse_array(),
            Tok::Sym("{") => self.parse_object(),
            Tok::Sym("/") => self.parse_regex(at),
            other => Err(err(at, format!("expected an expression but found {}", other.describe()))),
        }
    }

    fn resolve_root(&self, name: &str, at: usize) -> Result<Var, ParseError> {
        let known = || {
            self.syntax
                .roots
                .iter()
                .map(|(n, _)| format!("${n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if name.is_empty() {
            return self.syntax.bare_dollar.ok_or_else(|| {
                err(
                    at,
                    format!("a bare '$' is not a variable here; use one of {}", known()),
                )
            });
        }
        self.syntax
            .roots
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                err(
                    at,
                    format!("unknown variable '${name}' (expected one of {})", known()),
                )
            })
    }

    fn parse_call(&mut self, name: &str, at: usize) -> Result<Node, ParseError> {
        let func =
            Func::lookup(name).ok_or_else(|| err(at, format!("unknown function '{name}'")))?;
        if self.call_depth >= MAX_CALL_DEPTH {
            return Err(err(
                at,
                format!("function calls are nested more than {MAX_CALL_DEPTH} levels deep"),
            ));
        }
        self.expect("(")?;
        let first_arg_at = self.peek_start()?;
        self.call_depth += 1;
        let args = self.parse_list(")");
        self.call_depth -= 1;
        let mut args = args?;
        let (min, max) = func.arity();
        if args.len() < min || max.is_some_and(|m| args.len() > m) {
            let expected = match max {
                Some(m) if m == min => format!("{min}"),
                Some(m) => format!("{min} to {m}"),
                None => format!("at least {min}"),
            };
            return Err(err(
                at,
                format!(
                    "function '{name}' takes {expected} argument{} but {} {} given",
                    if max.unwrap_or(min) == 1 { "" } else { "s" },
                    args.len(),
                    if args.len() == 1 { "was" } else { "were" }
                ),
            ));
        }
        if func == Func::RegexMatchString {
            let first = args.remove(0);
            args.insert(0, literal_regex(first, first_arg_at)?);
        }
        Ok(Node::Call(func, args))
    }

    /// Comma-separated expressions up to `close` (already past the opening bracket).
    fn parse_list(&mut self, close: &'static str) -> Result<Vec<Node>, ParseError> {
        let mut items = Vec::new();
        if self.peek()? == &Tok::Sym(close) {
            self.next()?;
            return Ok(items);
        }
        loop {
            items.push(self.parse_expr()?);
            let (tok, at) = self.next()?;
            match tok {
                Tok::Sym(",") => {}
                Tok::Sym(s) if s == close => return Ok(items),
                other => {
                    return Err(err(
                        at,
                        format!("expected ',' or '{close}' but found {}", other.describe()),
                    ))
                }
            }
        }
    }

    fn parse_array(&mut self) -> Result<Node, ParseError> {
        let items = self.parse_list("]")?;
        if items.iter().all(|n| matches!(n, Node::Literal(_))) {
            Ok(Node::Literal(Value::Array(
                items
                    .into_iter()
                    .map(|n| match n {
                        Node::Literal(v) => v,
                        _ => unreachable!("checked above"),
                    })
                    .collect(),
            )))
        } else {
            Ok(Node::Array(items))
        }
    }

    fn parse_object(&mut self) -> Result<Node, ParseError> {
        let mut members: Vec<(String, Node)> = Vec::new();
        if self.peek()? == &Tok::Sym("}") {
            self.next()?;
        } else {
            loop {
                let (tok, at) = self.next()?;
                let key = match tok {
                    Tok::Str(s) | Tok::Ident(s) => s,
                    other => {
                        return Err(err(
                            at,
                            format!("expected an object key but found {}", other.describe()),
                        ))
                    }
                };
                if members.iter().any(|(k, _)| *k == key) {
                    return Err(err(
                        at,
                        format!("duplicate object key {}", Value::String(key)),
                    ));
                }
                self.expect(":")?;
                members.push((key, self.parse_expr()?));
                let (tok, at) = self.next()?;
                match tok {
                    Tok::Sym(",") => {}
                    Tok::Sym("}") => break,
                    other => {
                        return Err(err(
                            at,
                            format!("expected ',' or '}}' but found {}", other.describe()),
                        ))
                    }
                }
            }
        }
        if members.iter().all(|(_, n)| matches!(n, Node::Literal(_))) {
            let mut map = Map::with_capacity(members.len());
            for (k, n) in members {
                if let Node::Literal(v) = n {
                    map.insert(k, v);
                }
            }
            Ok(Node::Literal(Value::Object(map)))
        } else {
            Ok(Node::Object(members))
        }
    }

    /// A `/pattern/flags` literal; `at` is the offset of the opening slash (already consumed).
    fn parse_regex(&mut self, at: usize) -> Result<Node, ParseError> {
        debug_assert!(self.peeked.is_none());
        self.pos = at + 1;
        let mut raw = String::new();
        loop {
            match self.bump() {
                None => return Err(err(at, "unterminated regex literal")),
                Some('/') => break,
                Some('\\') => {
                    raw.push('\\');
                    if let Some(c) = self.bump() {
                        raw.push(c);
                    }
                }
                Some(c) => raw.push(c),
            }
        }
        let flags = self.take_while(|c| c.is_ascii_alphabetic()).to_string();
        RegexLit::new(&raw, &flags)
            .map(Node::Regex)
            .map_err(|m| err(at, m))
    }

    // ----- paths -----

    /// The steps right after a root (no whitespace before each `.` or `[`).
    fn parse_path(&mut self, root: Root) -> Result<Node, ParseError> {
        debug_assert!(self.peeked.is_none());
        let mut segments = Vec::new();
        loop {
            let at = self.pos;
            match self.cur() {
                Some('.') if self.char_at(at + 1) == Some('.') => {
                    self.pos += 2;
                    segments.push(Segment::Recursive(match self.cur() {
                        Some('*') => {
                            self.bump();
                            None
                        }
                        Some('[') => {
                            self.bump();
                            self.skip_ws();
                            if !matches!(self.cur(), Some('"' | '\'')) {
                                return Err(err(
                                    self.pos,
                                    format!(
                                        "expected a quoted name after '..[' but found {}",
                                        self.describe_char()
                                    ),
                                ));
                            }
                            let name = self.lex_string()?;
                            self.close_bracket()?;
                            Some(name)
                        }
                        _ => Some(self.member_name("..")?),
                    }));
                }
                Some('.') => {
                    self.bump();
                    if self.cur() == Some('*') {
                        self.bump();
                        segments.push(Segment::Wildcard);
                    } else {
                        segments.push(Segment::Field(self.member_name(".")?));
                    }
                }
                Some('[') => {
                    self.bump();
                    segments.push(self.parse_bracket()?);
                }
                _ => break,
            }
        }
        Ok(Node::Path { root, segments })
    }

    fn member_name(&mut self, after: &str) -> Result<String, ParseError> {
        let at = self.pos;
        let name = self.take_while(is_name_char);
        if name.is_empty() {
            return Err(err(
                at,
                format!(
                    "expected a member name after '{after}' but found {}",
                    self.describe_char()
                ),
            ));
        }
        Ok(name.to_string())
    }

    fn close_bracket(&mut self) -> Result<(), ParseError> {
        self.skip_ws();
        if self.cur() == Some(']') {
            self.bump();
            Ok(())
        } else {
            Err(err(
                self.pos,
                format!("expected ']' but found {}", self.describe_char()),
            ))
        }
    }

    /// The inside of `[...]`, the `[` already consumed.
    fn parse_bracket(&mut self) -> Result<Segment, ParseError> {
        self.skip_ws();
        match self.cur() {
            Some('*') => {
                self.bump();
                self.close_bracket()?;
                Ok(Segment::Wildcard)
            }
            Some('?') => {
                self.bump();
                self.filter_depth += 1;
                let cond = self.parse_expr();
                self.filter_depth -= 1;
                let cond = cond?;
                self.expect("]")?;
                Ok(Segment::Filter(Box::new(cond)))
            }
            Some(':') => self.parse_slice(None),
            Some('"' | '\'' | '-' | '0'..='9') => {
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    let item = match self.cur() {
                        Some('"' | '\'') => Selector::Name(self.lex_string()?),
                        Some('-' | '0'..='9') => Selector::Index(self.bracket_int()?),
                        _ => {
                            return Err(err(
                                self.pos,
                                format!(
                                    "expected a quoted name or an index but found {}",
                                    self.describe_char()
                                ),
                            ))
                        }
                    };
                    self.skip_ws();
                    match (self.cur(), &item) {
                        (Some(':'), Selector::Index(i)) if items.is_empty() => {
                            return self.parse_slice(Some(*i));
                        }
                        (Some(','), _) => {
                            self.bump();
                            items.push(item);
                        }
                        (Some(']'), _) => {
                            self.bump();
                            items.push(item);
                            break;
                        }
                        _ => {
                            return Err(err(
                                self.pos,
                                format!("expected ',' or ']' but found {}", self.describe_char()),
                            ))
                        }
                    }
                }
                Ok(match items.len() {
                    1 => match items.pop().expect("one item") {
                        Selector::Index(i) => Segment::Index(i),
                        Selector::Name(n) => Segment::Field(n),
                    },
                    _ => Segment::Union(items),
                })
            }
            _ => Err(err(
                self.pos,
                format!(
                    "expected a name, index, slice, '*' or '?(' filter after '[' but found {}",
                    self.describe_char()
                ),
            )),
        }
    }

    /// `[start:end:step]` with `start` already read and `pos` at the first ':'.
    fn parse_slice(&mut self, start: Option<i64>) -> Result<Segment, ParseError> {
        self.bump(); // ':'
        let end = self.optional_int()?;
        let mut step = None;
        self.skip_ws();
        if self.cur() == Some(':') {
            self.bump();
            let at = self.pos;
            step = self.optional_int()?;
            if step == Some(0) {
                return Err(err(at, "slice step cannot be 0"));
            }
        }
        self.close_bracket()?;
        Ok(Segment::Slice(start, end, step))
    }

    fn optional_int(&mut self) -> Result<Option<i64>, ParseError> {
        self.skip_ws();
        if matches!(self.cur(), Some('-' | '0'..='9')) {
            self.bracket_int().map(Some)
        } else {
            Ok(None)
        }
    }

    fn bracket_int(&mut self) -> Result<i64, ParseError> {
        let at = self.pos;
        let neg = self.cur() == Some('-');
        if neg {
            self.bump();
        }
        let digits = self.take_while(|c| c.is_ascii_digit());
        if digits.is_empty() {
            return Err(err(at, "expected an integer"));
        }
        let text = &self.src[at..self.pos];
        text.parse::<i64>()
            .map_err(|_| err(at, format!("index {text} is out of range")))
    }
}

/// Turns a string literal into a compiled regex (for `=~` and `regexMatchString`).
fn literal_regex(node: Node, at: usize) -> Result<Node, ParseError> {
    match node {
        Node::Literal(Value::String(p)) => RegexLit::new(&p, "")
            .map(Node::Regex)
            .map_err(|m| err(at, m)),
        other => Ok(other),
    }
}

fn negate_literal(n: &Number) -> Value {
    if let Some(i) = n.as_i64() {
        if let Some(r) = i.checked_neg() {
            return Value::from(r);
        }
    }
    if n.as_u64() == Some(1u64 << 63) {
        return Value::from(i64::MIN);
    }
    Number::from_f64(-n.as_f64().unwrap_or(0.0))
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CLOUDFLOW: Syntax = Syntax {
        roots: &[
            ("Input", Var::Input),
            ("Output", Var::Result),
            ("Context", Var::Context),
            ("Global", Var::Global),
        ],
        bare_dollar: None,
    };
    const HUAWEI: Syntax = Syntax {
        roots: &[("CONST", Var::Const)],
        bare_dollar: Some(Var::Input),
    };

    fn node(text: &str) -> Node {
        parse(text, &CANONICAL)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .node()
            .clone()
    }

    fn perr(text: &str) -> ParseError {
        parse(text, &CANONICAL).expect_err(text)
    }

    fn input(segments: Vec<Segment>) -> Node {
        Node::Path {
            root: Root::Var(Var::Input),
            segments,
        }
    }

    fn field(n: &str) -> Segment {
        Segment::Field(n.into())
    }

    fn lit(v: Value) -> Box<Node> {
        Box::new(Node::Literal(v))
    }

    #[test]
    fn tokenizer_literals() {
        assert_eq!(node("12"), Node::Literal(json!(12)));
        assert_eq!(node("12.5"), Node::Literal(json!(12.5)));
        assert_eq!(node("1e3"), Node::Literal(json!(1000.0)));
        assert_eq!(node("2.5E-1"), Node::Literal(json!(0.25)));
        assert_eq!(node("-7"), Node::Literal(json!(-7)));
        assert_eq!(node("-(7)"), Node::Literal(json!(-7)));
        assert_eq!(node("18446744073709551615"), Node::Literal(json!(u64::MAX)));
        assert_eq!(node("-9223372036854775808"), Node::Literal(json!(i64::MIN)));
        assert_eq!(node("99999999999999999999"), Node::Literal(json!(1e20)));
        assert_eq!(
            node(r#""a\"b\n\u00e9\ud83d\ude00""#),
            Node::Literal(json!("a\"b\né😀"))
        );
        assert_eq!(node(r"'it\'s'"), Node::Literal(json!("it's")));
        assert_eq!(node(r"`raw \n ${x}`"), Node::Literal(json!(r"raw \n ${x}")));
        assert_eq!(node("true"), Node::Literal(json!(true)));
        assert_eq!(node("nil"), Node::Literal(json!(null)));
        assert_eq!(node(" null "), Node::Literal(json!(null)));
        assert_eq!(
            node("[1, \"a\", [true]]"),
            Node::Literal(json!([1, "a", [true]]))
        );
        assert_eq!(
            node("{a: 1, \"b c\": [] }"),
            Node::Literal(json!({"a": 1, "b c": []}))
        );
        assert_eq!(node("[]"), Node::Literal(json!([])));
        assert_eq!(node("{}"), Node::Literal(json!({})));
    }

    #[test]
    fn tokenizer_errors_have_offsets() {
        let e = perr("$.a = 1");
        assert_eq!((e.offset, e.message.contains("'=='")), (4, true));
        let e = perr("$.a & $.b");
        assert_eq!((e.offset, e.message.contains("'&&'")), (4, true));
        assert_eq!(
            perr("\"abc").to_string(),
            "at offset 0: unterminated string literal"
        );
        assert_eq!(perr("1 + 'x\\q'").offset, 6);
        assert_eq!(perr("\"\\u12\"").offset, 1);
        assert_eq!(perr("\"\\ud800\"").offset, 1);
        assert_eq!(perr("1e").offset, 1);
        assert_eq!(perr("1 # 2").message, "unexpected character '#'");
        assert_eq!(perr("/abc").message, "unterminated regex literal");
    }

    #[test]
    fn coalesce_is_not_or() {
        assert_eq!(
            node("$.a | 1"),
            Node::Coalesce(Box::new(input(vec![field("a")])), lit(json!(1)))
        );
        assert!(matches!(
            node("$.a || 1"),
            Node::Binary {
                op: BinaryOp::Or,
                ..
            }
        ));
        assert!(
            matches!(node("$.a||$.b|1"), Node::Coalesce(l, _) if matches!(*l, Node::Binary { op: BinaryOp::Or, .. }))
        );
    }

    #[test]
    fn precedence_and_associativity() {
        let shown = |t: &str| parse(t, &CLOUDFLOW).unwrap().text().to_string();
        assert_eq!(node("1 + 2 * 3").to_string(), "1 + 2 * 3");
        assert!(matches!(
            node("1 + 2 * 3"),
            Node::Binary {
                op: BinaryOp::Add,
                ..
            }
        ));
        assert!(matches!(
            node("(1 + 2) * 3"),
            Node::Binary {
                op: BinaryOp::Mul,
                ..
            }
        ));
        assert!(
            matches!(node("1 - 2 - 3"), Node::Binary { op: BinaryOp::Sub, left, .. } if matches!(*left, Node::Binary { op: BinaryOp::Sub, .. }))
        );
        assert!(matches!(
            node("true || false && false"),
            Node::Binary {
                op: BinaryOp::Or,
                ..
            }
        ));
        assert!(matches!(
            node("1 < 2 == true"),
            Node::Binary {
                op: BinaryOp::Eq,
                ..
            }
        ));
        assert!(matches!(
            node("1 + 1 in [2]"),
            Node::Binary {
                op: BinaryOp::In,
                ..
            }
        ));
        assert!(matches!(
            node("!$.a == $.b"),
            Node::Binary {
                op: BinaryOp::Eq,
                ..
            }
        ));
        assert!(matches!(
            node("-$.a * 2"),
            Node::Binary {
                op: BinaryOp::Mul,
                ..
            }
        ));
        assert!(matches!(
            node("$.a == 1 && $.b | false"),
            Node::Coalesce(..)
        ));
        assert_eq!(
            shown("!($Input.a > 1 || $Input.b) && $Input.c != \"x\""),
            "!($input.a > 1 || $input.b) && $input.c != \"x\""
        );
        assert_eq!(
            shown("$Input.a - ($Input.b - 1)"),
            "$input.a - ($input.b - 1)"
        );
        assert_eq!(shown("$Input.a - $Input.b - 1"), "$input.a - $input.b - 1");
        assert_eq!(shown("-($Input.a + 1) * -2"), "-($input.a + 1) * -2");
        assert_eq!(
            shown("$Input.x and not $Input.y or false"),
            "$input.x && !$input.y || false"
        );
    }

    #[test]
    fn paths() {
        assert_eq!(
            node("$input.a[\"key with space\"]['k'][0][-1]"),
            input(vec![
                field("a"),
                field("key with space"),
                field("k"),
                Segment::Index(0),
                Segment::Index(-1)
            ])
        );
        assert_eq!(
            node("$.a.*[*][1:3][:-1][::2][0, 2]['x','y']..n..*..['odd key']"),
            input(vec![
                field("a"),
                Segment::Wildcard,
                Segment::Wildcard,
                Segment::Slice(Some(1), Some(3), None),
                Segment::Slice(None, Some(-1), None),
                Segment::Slice(None, None, Some(2)),
                Segment::Union(vec![Selector::Index(0), Selector::Index(2)]),
                Segment::Union(vec![Selector::Name("x".into()), Selector::Name("y".into())]),
                Segment::Recursive(Some("n".into())),
                Segment::Recursive(None),
                Segment::Recursive(Some("odd key".into())),
            ])
        );
        assert_eq!(
            node("$.in.nin.0"),
            input(vec![field("in"), field("nin"), field("0")])
        );
        assert_eq!(node("$"), input(vec![]));
        assert_eq!(
            parse("$Context.Current.Error.Code", &CLOUDFLOW)
                .unwrap()
                .node(),
            &Node::Path {
                root: Root::Var(Var::Context),
                segments: vec![field("Current"), field("Error"), field("Code")],
            }
        );
        assert_eq!(
            parse("$CONST.a", &HUAWEI).unwrap().node(),
            &Node::Path {
                root: Root::Var(Var::Const),
                segments: vec![field("a")]
            }
        );
    }

    #[test]
    fn filters() {
        let n = node("$.b[?(@.price < 10 && @.tag == \"x\")]");
        let Node::Path { segments, .. } = n else {
            panic!()
        };
        let Segment::Filter(cond) = &segments[1] else {
            panic!()
        };
        assert!(matches!(
            **cond,
            Node::Binary {
                op: BinaryOp::And,
                ..
            }
        ));
        let n = node("$.b[?(@.isbn)]");
        assert_eq!(
            n,
            input(vec![
                field("b"),
                Segment::Filter(Box::new(Node::Path {
                    root: Root::Current,
                    segments: vec![field("isbn")]
                }))
            ])
        );
        assert_eq!(node("$.b[?@.x > 1]"), node("$.b[?(@.x > 1)]"));
        assert_eq!(node("$.b[ ?( @ ) ]").to_string(), "$input.b[?(@)]");
        assert!(perr("@.a").message.contains("only allowed inside a filter"));
        assert_eq!(
            perr("$.b[?(@.a > 1)").message,
            "expected ']' but found end of input"
        );
    }

    #[test]
    fn path_errors() {
        assert_eq!(perr("$.").offset, 2);
        assert!(perr("$.").message.contains("member name"));
        assert_eq!(perr("$.a[").offset, 4);
        assert_eq!(
            perr("$.a[1").message,
            "expected ',' or ']' but found end of input"
        );
        assert_eq!(perr("$.a[::0]").message, "slice step cannot be 0");
        assert_eq!(perr("$.a[x]").offset, 4);
        assert_eq!(
            perr("$.a[99999999999999999999]").message,
            "index 99999999999999999999 is out of range"
        );
        assert_eq!(perr("$.a..").offset, 5);
        let e = perr("$foo.a");
        assert_eq!(e.offset, 0);
        assert!(e.message.contains("unknown variable '$foo'"), "{e}");
        assert!(e.message.contains("$scope_local"));
        let e = parse("$.a", &CLOUDFLOW).unwrap_err();
        assert!(
            e.message.contains("bare '$'") && e.message.contains("$Input"),
            "{e}"
        );
        let e = parse("$input.a", &CLOUDFLOW).unwrap_err();
        assert!(e.message.contains("'$input'"));
    }

    #[test]
    fn general_errors_with_offsets() {
        assert_eq!(
            perr("($.a + 1").to_string(),
            "at offset 8: expected ')' but found end of input"
        );
        assert_eq!(
            perr("").to_string(),
            "at offset 0: expected an expression but found end of input"
        );
        assert_eq!(perr("1 +").offset, 3);
        assert_eq!(
            perr("1 2").message,
            "expected an operator or end of input but found number 2"
        );
        let e = perr("$.a == foo");
        assert_eq!(e.offset, 7);
        assert!(e.message.contains("'foo'"));
        assert_eq!(
            perr("[1, 2").message,
            "expected ',' or ']' but found end of input"
        );
        assert_eq!(perr("{a 1}").message, "expected ':' but found number 1");
        assert!(perr("{a: 1, a: 2}").message.contains("duplicate"));
        assert_eq!(
            perr("$.a not 1").message,
            "expected 'in' after 'not' but found number 1"
        );
        assert_eq!(perr("$.s =~ \"(\"").offset, 7);
        assert!(perr("$.s =~ /a/q").message.contains("flag"));
        let deep = format!("{}1{}", "(".repeat(100), ")".repeat(100));
        assert!(perr(&deep).message.contains("nested"));
        let ok = format!("{}1{}", "(".repeat(20), ")".repeat(20));
        assert_eq!(node(&ok), Node::Literal(json!(1)));
    }

    #[test]
    fn calls_are_checked_at_parse_time() {
        assert!(
            matches!(node("format(\"hi {}\", $.id)"), Node::Call(Func::Format, a) if a.len() == 2)
        );
        assert!(matches!(node("uuid()"), Node::Call(Func::Uuid, a) if a.is_empty()));
        let e = perr("1 + nope(1)");
        assert_eq!(
            (e.offset, e.message.as_str()),
            (4, "unknown function 'nope'")
        );
        assert!(perr("Length($.a)")
            .message
            .contains("unknown function 'Length'"));
        let e = perr("length(1, 2)");
        assert_eq!(
            e.message,
            "function 'length' takes 1 argument but 2 were given"
        );
        assert_eq!(
            perr("format()").message,
            "function 'format' takes at least 1 argument but 0 were given"
        );
        assert_eq!(
            perr("uuid(1)").message,
            "function 'uuid' takes 0 arguments but 1 was given"
        );
        assert_eq!(perr("length(1,").offset, 9);
        let nest = |n: usize| format!("{}$.a{}", "toJSON(".repeat(n), ")".repeat(n));
        assert!(parse(&nest(10), &CANONICAL).is_ok());
        let e = perr(&nest(11));
        assert!(e.message.contains("more than 10"));
        assert_eq!(e.offset, 70);
        assert!(
            matches!(node("regexMatchString(\"a+\", $.s)"), Node::Call(_, a) if matches!(a[0], Node::Regex(_)))
        );
        let e = perr("regexMatchString(\"(\", $.s)");
        assert!(e.message.contains("invalid regular"));
        assert_eq!(e.offset, 17);
    }

    #[test]
    fn regex_literals() {
        let n = node("$.s =~ /a\\/b/i");
        let Node::Binary {
            op: BinaryOp::RegexMatch,
            right,
            ..
        } = n
        else {
            panic!()
        };
        let Node::Regex(r) = *right else { panic!() };
        assert_eq!((r.pattern(), r.flags()), ("a/b", "i"));
        assert!(
            matches!(node("$.s =~ \"x\""), Node::Binary { right, .. } if matches!(*right, Node::Regex(_)))
        );
        assert!(
            matches!(node("$.s =~ $.p"), Node::Binary { right, .. } if matches!(*right, Node::Path { .. }))
        );
        // '/' after an operand is division.
        assert!(matches!(
            node("$.a / 2 / 1"),
            Node::Binary {
                op: BinaryOp::Div,
                ..
            }
        ));
    }

    #[test]
    fn vendor_text_is_canonical_and_canonical_text_is_kept() {
        let e = parse("$Input.a   ==  1", &CLOUDFLOW).unwrap();
        assert_eq!(e.text(), "$input.a == 1");
        let e = parse("$Output.x | $Global.y", &CLOUDFLOW).unwrap();
        assert_eq!(e.text(), "$result.x | $global.y");
        let e = parse("$.a | $CONST.b", &HUAWEI).unwrap();
        assert_eq!(e.text(), "$input.a | $const.b");
        let e = parse("  $.a   ==  1 ", &CANONICAL).unwrap();
        assert_eq!(e.text(), "$.a   ==  1");
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "$.a.b[0][-1][\"x y\"][*][1:2][::-1][0,1][\"a\",\"b\"]..c..*",
            "$.s =~ /a\\/b\\d/i && regexMatchString(\"^x\", $.t)",
            "!(-$.a < 2) || $.b nin [1, 2.5, \"x\", null] && {\"k\": $.c, \"l\": 1} == $.o",
            "$.a | $.b | 'c'",
            "($.a | 1) + 2 * (3 - -4) % 5 / 6",
            "format(\"{} {}\", toArray($item, $index), [$.x, {\"n\": -1.5e300}])",
            "$.list[?(@.n > 1 && @.m[?(@ == 2)])]",
            "\"\\u0000 \\\" é\"",
            "1 - (2 - 3) - (4 + 5)",
            "!!$.a",
            "- -$.a",
        ] {
            let first = parse(text, &CANONICAL).unwrap_or_else(|e| panic!("{text}: {e}"));
            let rendered = first.node().to_string();
            let again = parse(&rendered, &CANONICAL).unwrap_or_else(|e| panic!("{rendered}: {e}"));
            assert_eq!(first.node(), again.node(), "{text} -> {rendered}");
            assert_eq!(again.node().to_string(), rendered);
        }
    }

    #[test]
    fn offsets_are_bytes() {
        let e = perr("\"é\" + ");
        assert_eq!(e.offset, "\"é\" + ".len());
    }

    #[test]
    fn literal_array_folding_and_mixed_arrays() {
        assert_eq!(
            node("$.k in [\"a\", \"b\"]"),
            Node::Binary {
                op: BinaryOp::In,
                left: Box::new(input(vec![field("k")])),
                right: lit(json!(["a", "b"])),
            }
        );
        assert!(matches!(node("[1, $.a]"), Node::Array(items) if items.len() == 2));
        assert!(matches!(node("{\"a\": $.a}"), Node::Object(m) if m[0].0 == "a"));
    }
}
