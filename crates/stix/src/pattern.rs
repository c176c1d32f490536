//! STIX 2.1 patterning (§9): a hand-written parser for the whole grammar (OASIS
//! `STIXPattern.g4`), and the subset mamori's detectors can match turned into IOCs.
//!
//! [`Pattern::parse`] accepts exactly the patterns the grammar accepts (plus the two
//! semantic checks of the OASIS validator: hash values of known algorithms must have the
//! right form, and a simple observation expression may not carry the same qualifier twice),
//! so a syntax error at the edge is a real error. [`Pattern::iocs`] then turns a pattern
//! that is a disjunction of equality (or `IN`, or CIDR `ISSUBSET`) tests on addresses,
//! domains, URLs and file hashes into a list of [`Ioc`]s — any one of which matching means
//! the indicator matches — and refuses everything else as unsupported rather than
//! over- or under-matching.
//!
//! The parser is recursive descent over a token list, bounded to [`MAX_NESTING`] levels of
//! parentheses and brackets, and never panics on input.

use crate::error::Error;
use crate::object::Indicator;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Deepest nesting of parentheses and brackets a pattern may have.
pub const MAX_NESTING: usize = 64;

/// A parsed STIX pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    /// The top observation expression.
    pub root: ObservationExpr,
}

/// An observation expression.
#[derive(Debug, Clone, PartialEq)]
pub enum ObservationExpr {
    /// `[ comparison ]`.
    Observation(ComparisonExpr),
    /// `a AND b AND …`: all observed.
    And(Vec<ObservationExpr>),
    /// `a OR b OR …`: any observed.
    Or(Vec<ObservationExpr>),
    /// `a FOLLOWEDBY b …`: observed in order.
    FollowedBy(Vec<ObservationExpr>),
    /// An expression with a qualifier.
    Qualified {
        /// What is qualified.
        inner: Box<ObservationExpr>,
        /// How.
        qualifier: Qualifier,
    },
}

/// An observation qualifier.
#[derive(Debug, Clone, PartialEq)]
pub enum Qualifier {
    /// `WITHIN n SECONDS`.
    Within(f64),
    /// `REPEATS n TIMES`.
    Repeats(i64),
    /// `START t'…' STOP t'…'`.
    StartStop(String, String),
}

/// A comparison expression inside `[...]`.
#[derive(Debug, Clone, PartialEq)]
pub enum ComparisonExpr {
    /// All hold (on the same object).
    And(Vec<ComparisonExpr>),
    /// Any holds.
    Or(Vec<ComparisonExpr>),
    /// One test.
    Test(Comparison),
}

/// One property test.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The object path.
    pub path: ObjectPath,
    /// `NOT` before the operator.
    pub negated: bool,
    /// The operator.
    pub op: Op,
    /// The right-hand side ([`Literal::None`] for `EXISTS`).
    pub value: Literal,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Op {
    Eq,
    Neq,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Like,
    Matches,
    IsSubset,
    IsSuperset,
    Exists,
}

/// An object path: `file:hashes.'SHA-256'`, `network-traffic:dst_ref.value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectPath {
    /// The object type before the colon.
    pub object_type: String,
    /// The steps after it.
    pub steps: Vec<PathStep>,
}

/// One step of an object path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    /// `.name` or `.'quoted-name'` (and the first component).
    Property(String),
    /// `[n]`.
    Index(i64),
    /// `[*]`.
    AnyIndex,
}

impl fmt::Display for ObjectPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.object_type)?;
        for (i, s) in self.steps.iter().enumerate() {
            match s {
                PathStep::Property(p) if i == 0 => write!(f, "{p}")?,
                PathStep::Property(p) => write!(f, ".{p}")?,
                PathStep::Index(n) => write!(f, "[{n}]")?,
                PathStep::AnyIndex => write!(f, "[*]")?,
            }
        }
        Ok(())
    }
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// Integer.
    Int(i64),
    /// Float.
    Float(f64),
    /// `'text'`, unescaped.
    String(String),
    /// `true` / `false`.
    Bool(bool),
    /// `b'base64'`, as written.
    Binary(String),
    /// `h'hex'`, as written.
    Hex(String),
    /// `t'2016-06-01T00:00:00Z'`, as written.
    Timestamp(String),
    /// `(a, b, …)` for `IN`.
    Set(Vec<Literal>),
    /// No value (`EXISTS`).
    None,
}

/// A simple indicator of compromise that a detector can match.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ioc {
    /// One address.
    Address(IpAddr),
    /// A CIDR block (address bits past the prefix are zero).
    Network {
        /// Network address.
        addr: IpAddr,
        /// Prefix length.
        prefix_len: u8,
    },
    /// A domain name, lowercase, without a trailing dot.
    Domain(String),
    /// A URL, as written.
    Url(String),
    /// A file hash, lowercase hex.
    Hash {
        /// Algorithm.
        algorithm: HashAlgorithm,
        /// Hex digest.
        value: String,
    },
}

/// The file-hash algorithms mamori matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashAlgorithm {
    /// MD5.
    Md5,
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-512.
    Sha512,
}

impl HashAlgorithm {
    /// The STIX hashing-algorithm-ov name.
    pub fn stix_name(self) -> &'static str {
        match self {
            HashAlgorithm::Md5 => "MD5",
            HashAlgorithm::Sha1 => "SHA-1",
            HashAlgorithm::Sha256 => "SHA-256",
            HashAlgorithm::Sha512 => "SHA-512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            HashAlgorithm::Md5 => 32,
            HashAlgorithm::Sha1 => 40,
            HashAlgorithm::Sha256 => 64,
            HashAlgorithm::Sha512 => 128,
        }
    }

    fn from_key(k: &str) -> Option<HashAlgorithm> {
        match k.to_ascii_uppercase().replace('-', "").as_str() {
            "MD5" => Some(HashAlgorithm::Md5),
            "SHA1" => Some(HashAlgorithm::Sha1),
            "SHA256" => Some(HashAlgorithm::Sha256),
            "SHA512" => Some(HashAlgorithm::Sha512),
            _ => None,
        }
    }
}

/// Hex lengths the OASIS validator checks for hash keys (beyond the four we match).
fn hash_hex_len(key: &str) -> Option<usize> {
    match key.to_ascii_uppercase().replace('-', "").as_str() {
        "MD5" => Some(32),
        "SHA1" | "RIPEMD160" => Some(40),
        "SHA224" | "SHA3224" => Some(56),
        "SHA256" | "SHA3256" => Some(64),
        "SHA384" | "SHA3384" => Some(96),
        "SHA512" | "SHA3512" | "WHIRLPOOL" => Some(128),
        _ => None,
    }
}

// --- lexer ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Kw(&'static str),
    Str(String),
    Num {
        text: String,
        neg: bool,
        float: bool,
    },
    Bool(bool),
    Ts(String),
    Bin(String),
    Hex(String),
    Eq,
    Neq,
    Lt,
    Le,
    Gt,
    Ge,
    Colon,
    Dot,
    Comma,
    LParen,
    RParen,
    LBrack,
    RBrack,
    Star,
}

const KEYWORDS: [&str; 17] = [
    "AND",
    "OR",
    "NOT",
    "FOLLOWEDBY",
    "LIKE",
    "MATCHES",
    "ISSUPERSET",
    "ISSUBSET",
    "EXISTS",
    "LAST",
    "IN",
    "START",
    "STOP",
    "SECONDS",
    "WITHIN",
    "REPEATS",
    "TIMES",
];

struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

fn syntax(s: &str, byte: usize, expected: impl Into<String>) -> Error {
    Error::PatternSyntax {
        offset: s.get(..byte).map_or(byte, |p| p.chars().count()),
        expected: expected.into(),
    }
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }
    fn peek_at(&self, n: usize) -> Option<u8> {
        self.s.as_bytes().get(self.pos + n).copied()
    }
    fn err(&self, at: usize, expected: &str) -> Error {
        syntax(self.s, at, expected)
    }

    fn tokens(mut self) -> Result<Vec<(usize, Tok)>, Error> {
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            let start = self.pos;
            if c.is_ascii_whitespace() {
                self.pos += 1;
                continue;
            }
            if c == b'/' && self.peek_at(1) == Some(b'*') {
                let rest = self.s.get(self.pos + 2..).unwrap_or("");
                let end = rest
                    .find("*/")
                    .ok_or_else(|| self.err(start, "*/ to close the comment"))?;
                self.pos += 2 + end + 2;
                continue;
            }
            if c == b'/' && self.peek_at(1) == Some(b'/') {
                let rest = self.s.get(self.pos..).unwrap_or("");
                self.pos += rest.find(['\n', '\r']).unwrap_or(rest.len());
                continue;
            }
            let tok = match c {
                b'\'' => Tok::Str(self.string()?),
                b't' | b'h' | b'b' if self.peek_at(1) == Some(b'\'') => self.typed_literal(c)?,
                b'a'..=b'z' | b'A'..=b'Z' | b'_' => self.word(),
                b'0'..=b'9' | b'.' | b'+' | b'-'
                    if c != b'.' || self.peek_at(1).is_some_and(|d| d.is_ascii_digit()) =>
                {
                    self.number()?
                }
                _ => {
                    self.pos += 1;
                    let next = self.peek();
                    let two = |t: Tok, l: &mut Self| {
                        l.pos += 1;
                        t
                    };
                    match (c, next) {
                        (b'=', Some(b'=')) => two(Tok::Eq, &mut self),
                        (b'=', _) => Tok::Eq,
                        (b'!', Some(b'=')) => two(Tok::Neq, &mut self),
                        (b'<', Some(b'>')) => two(Tok::Neq, &mut self),
                        (b'<', Some(b'=')) => two(Tok::Le, &mut self),
                        (b'<', _) => Tok::Lt,
                        (b'>', Some(b'=')) => two(Tok::Ge, &mut self),
                        (b'>', _) => Tok::Gt,
                        (b':', _) => Tok::Colon,
                        (b'.', _) => Tok::Dot,
                        (b',', _) => Tok::Comma,
                        (b'(', _) => Tok::LParen,
                        (b')', _) => Tok::RParen,
                        (b'[', _) => Tok::LBrack,
                        (b']', _) => Tok::RBrack,
                        (b'*', _) => Tok::Star,
                        _ => return Err(self.err(start, "a STIX pattern token")),
                    }
                }
            };
            out.push((start, tok));
        }
        Ok(out)
    }

    fn string(&mut self) -> Result<String, Error> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        let rest = self.s.get(self.pos..).unwrap_or("");
        let mut chars = rest.char_indices();
        while let Some((i, ch)) = chars.next() {
            match ch {
                '\'' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, e @ ('\'' | '\\'))) => out.push(e),
                    _ => {
                        return Err(self.err(
                            self.pos + i,
                            "\\' or \\\\ (the only escapes a STIX string literal allows)",
                        ));
                    }
                },
                c => out.push(c),
            }
        }
        Err(self.err(start, "a closing ' for the string literal"))
    }

    fn typed_literal(&mut self, kind: u8) -> Result<Tok, Error> {
        let start = self.pos;
        self.pos += 1;
        let at = self.pos;
        // No escapes in these literals: the body runs to the next quote.
        let rest = self.s.get(at + 1..).unwrap_or("");
        let Some(end) = rest.find('\'') else {
            return Err(self.err(start, "a closing ' for the literal"));
        };
        let body = rest.get(..end).unwrap_or("");
        self.pos = at + 1 + end + 1;
        match kind {
            b't' if is_pattern_timestamp(body) => Ok(Tok::Ts(body.to_owned())),
            b't' => Err(self.err(start, "a timestamp literal t'YYYY-MM-DDTHH:MM:SS[.s]Z'")),
            b'h' if body.len() % 2 == 0 && body.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Ok(Tok::Hex(body.to_owned()))
            }
            b'h' => Err(self.err(start, "a hex literal h'…' of hex digit pairs")),
            _ if is_base64(body) => Ok(Tok::Bin(body.to_owned())),
            _ => Err(self.err(start, "a binary literal b'…' in padded base64")),
        }
    }

    fn word(&mut self) -> Tok {
        let rest = self.s.get(self.pos..).unwrap_or("");
        let len = rest
            .bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
            .unwrap_or(rest.len());
        let w = rest.get(..len).unwrap_or("");
        self.pos += len;
        if let Some(k) = KEYWORDS.iter().find(|k| **k == w) {
            return Tok::Kw(k);
        }
        match w {
            "true" => Tok::Bool(true),
            "false" => Tok::Bool(false),
            _ => Tok::Ident(w.to_owned()),
        }
    }

    fn number(&mut self) -> Result<Tok, Error> {
        let start = self.pos;
        let mut neg = false;
        match self.peek() {
            Some(b'-') => {
                neg = true;
                self.pos += 1;
            }
            Some(b'+') => self.pos += 1,
            _ => {}
        }
        let digits_from = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        let int_part = self.s.get(digits_from..self.pos).unwrap_or("");
        let mut float = false;
        if self.peek() == Some(b'.') && self.peek_at(1).is_some_and(|b| b.is_ascii_digit()) {
            float = true;
            self.pos += 1;
            while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                self.pos += 1;
            }
        } else if int_part.is_empty() || (int_part.len() > 1 && int_part.starts_with('0')) {
            return Err(self.err(start, "a number (integers have no leading zeros)"));
        }
        let text = self.s.get(digits_from..self.pos).unwrap_or("").to_owned();
        Ok(Tok::Num { text, neg, float })
    }
}

fn is_pattern_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let d = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let two = |i: usize, max: u32, min: u32| -> bool {
        d(i) && d(i + 1)
            && s.get(i..i + 2)
                .and_then(|x| x.parse::<u32>().ok())
                .is_some_and(|n| (min..=max).contains(&n))
    };
    let fixed = d(0)
        && d(1)
        && d(2)
        && d(3)
        && b.get(4) == Some(&b'-')
        && two(5, 12, 1)
        && b.get(7) == Some(&b'-')
        && two(8, 31, 1)
        && b.get(10) == Some(&b'T')
        && two(11, 23, 0)
        && b.get(13) == Some(&b':')
        && two(14, 59, 0)
        && b.get(16) == Some(&b':')
        && two(17, 60, 0);
    fixed
        && match b.get(19) {
            Some(b'Z') => b.len() == 20,
            Some(b'.') => {
                b.len() > 21
                    && b.last() == Some(&b'Z')
                    && b.get(20..b.len() - 1)
                        .is_some_and(|f| f.iter().all(u8::is_ascii_digit))
            }
            _ => false,
        }
}

fn is_base64(s: &str) -> bool {
    let b = s.as_bytes();
    let ch = |c: &u8| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/';
    if b.is_empty() || !b.len().is_multiple_of(4) {
        return false;
    }
    let pad = b.iter().rev().take_while(|c| **c == b'=').count();
    pad <= 2
        && b.get(..b.len() - pad)
            .is_some_and(|body| body.iter().all(ch))
}

// --- parser --------------------------------------------------------------------------

struct Parser<'a> {
    src: &'a str,
    toks: Vec<(usize, Tok)>,
    at: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(_, t)| t)
    }
    fn offset(&self) -> usize {
        self.toks.get(self.at).map_or(self.src.len(), |(o, _)| *o)
    }
    fn err(&self, expected: &str) -> Error {
        let found = match self.peek() {
            None => "the end of the pattern".to_owned(),
            Some(_) => {
                let rest = self.src.get(self.offset()..).unwrap_or("");
                format!("{:?}", rest.chars().take(20).collect::<String>())
            }
        };
        syntax(
            self.src,
            self.offset(),
            format!("{expected}, found {found}"),
        )
    }
    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == Some(t) {
            self.at += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, t: &Tok, what: &str) -> Result<(), Error> {
        if self.eat(t) {
            Ok(())
        } else {
            Err(self.err(what))
        }
    }
    fn kw(&mut self, k: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Kw(x)) if *x == k) {
            self.at += 1;
            true
        } else {
            false
        }
    }
    fn enter(&mut self) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.err(&format!("at most {MAX_NESTING} levels of nesting")));
        }
        Ok(())
    }

    fn observations(&mut self) -> Result<ObservationExpr, Error> {
        let mut parts = vec![self.obs_or()?];
        while self.kw("FOLLOWEDBY") {
            parts.push(self.obs_or()?);
        }
        Ok(one_or(parts, ObservationExpr::FollowedBy))
    }

    fn obs_or(&mut self) -> Result<ObservationExpr, Error> {
        let mut parts = vec![self.obs_and()?];
        while self.kw("OR") {
            parts.push(self.obs_and()?);
        }
        Ok(one_or(parts, ObservationExpr::Or))
    }

    fn obs_and(&mut self) -> Result<ObservationExpr, Error> {
        let mut parts = vec![self.obs_qualified()?];
        while self.kw("AND") {
            parts.push(self.obs_qualified()?);
        }
        Ok(one_or(parts, ObservationExpr::And))
    }

    fn obs_qualified(&mut self) -> Result<ObservationExpr, Error> {
        let (mut e, simple) = if self.eat(&Tok::LBrack) {
            self.enter()?;
            let c = self.comparison_or()?;
            self.expect(&Tok::RBrack, "] or AND/OR")?;
            self.depth -= 1;
            (ObservationExpr::Observation(c), true)
        } else if self.eat(&Tok::LParen) {
            self.enter()?;
            let inner = self.observations()?;
            self.expect(&Tok::RParen, ") or AND/OR/FOLLOWEDBY")?;
            self.depth -= 1;
            (inner, false)
        } else {
            return Err(self.err("[ or ( to start an observation expression"));
        };
        let mut seen: Vec<std::mem::Discriminant<Qualifier>> = Vec::new();
        loop {
            let q_at = self.at;
            let q = if self.kw("WITHIN") {
                let n = self.positive_number()?;
                if !self.kw("SECONDS") {
                    return Err(self.err("SECONDS"));
                }
                Qualifier::Within(n)
            } else if self.kw("REPEATS") {
                let n = self.positive_int()?;
                if !self.kw("TIMES") {
                    return Err(self.err("TIMES"));
                }
                Qualifier::Repeats(n)
            } else if self.kw("START") {
                let a = self.timestamp()?;
                if !self.kw("STOP") {
                    return Err(self.err("STOP"));
                }
                let b = self.timestamp()?;
                Qualifier::StartStop(a, b)
            } else {
                break;
            };
            let d = std::mem::discriminant(&q);
            if simple && seen.contains(&d) {
                self.at = q_at;
                return Err(self.err("no second qualifier of the same kind on one observation"));
            }
            seen.push(d);
            e = ObservationExpr::Qualified {
                inner: Box::new(e),
                qualifier: q,
            };
        }
        Ok(e)
    }

    fn positive_number(&mut self) -> Result<f64, Error> {
        match self.peek().cloned() {
            Some(Tok::Num {
                text, neg: false, ..
            }) => {
                let n = text.parse::<f64>().map_err(|_| self.err("a number"))?;
                self.at += 1;
                Ok(n)
            }
            _ => Err(self.err("a positive number")),
        }
    }

    fn positive_int(&mut self) -> Result<i64, Error> {
        match self.peek().cloned() {
            Some(Tok::Num {
                text,
                neg: false,
                float: false,
            }) => {
                let n = text
                    .parse::<i64>()
                    .map_err(|_| self.err("an integer that fits in 64 bits"))?;
                self.at += 1;
                Ok(n)
            }
            _ => Err(self.err("a positive integer")),
        }
    }

    fn timestamp(&mut self) -> Result<String, Error> {
        match self.peek().cloned() {
            Some(Tok::Ts(t)) => {
                self.at += 1;
                Ok(t)
            }
            _ => Err(self.err("a timestamp literal t'…'")),
        }
    }

    fn comparison_or(&mut self) -> Result<ComparisonExpr, Error> {
        let mut parts = vec![self.comparison_and()?];
        while self.kw("OR") {
            parts.push(self.comparison_and()?);
        }
        Ok(one_or(parts, ComparisonExpr::Or))
    }

    fn comparison_and(&mut self) -> Result<ComparisonExpr, Error> {
        let mut parts = vec![self.test()?];
        while self.kw("AND") {
            parts.push(self.test()?);
        }
        Ok(one_or(parts, ComparisonExpr::And))
    }

    fn test(&mut self) -> Result<ComparisonExpr, Error> {
        if self.eat(&Tok::LParen) {
            self.enter()?;
            let c = self.comparison_or()?;
            self.expect(&Tok::RParen, ") or AND/OR")?;
            self.depth -= 1;
            return Ok(c);
        }
        if self.kw("EXISTS") {
            let path = self.path()?;
            return Ok(ComparisonExpr::Test(Comparison {
                path,
                negated: false,
                op: Op::Exists,
                value: Literal::None,
            }));
        }
        let path = self.path()?;
        let negated = self.kw("NOT");
        let op = match self.peek() {
            Some(Tok::Eq) => Op::Eq,
            Some(Tok::Neq) => Op::Neq,
            Some(Tok::Lt) => Op::Lt,
            Some(Tok::Le) => Op::Le,
            Some(Tok::Gt) => Op::Gt,
            Some(Tok::Ge) => Op::Ge,
            Some(Tok::Kw("IN")) => Op::In,
            Some(Tok::Kw("LIKE")) => Op::Like,
            Some(Tok::Kw("MATCHES")) => Op::Matches,
            Some(Tok::Kw("ISSUBSET")) => Op::IsSubset,
            Some(Tok::Kw("ISSUPERSET")) => Op::IsSuperset,
            _ => {
                return Err(
                    self.err("a comparison operator (=, !=, <, >, IN, LIKE, MATCHES, ISSUBSET…)")
                );
            }
        };
        self.at += 1;
        let value = match op {
            Op::In => self.set()?,
            Op::Like | Op::Matches | Op::IsSubset | Op::IsSuperset => match self.peek().cloned() {
                Some(Tok::Str(s)) => {
                    self.at += 1;
                    Literal::String(s)
                }
                _ => return Err(self.err("a string literal")),
            },
            Op::Eq | Op::Neq => self.literal(true)?,
            _ => self.literal(false)?,
        };
        Ok(ComparisonExpr::Test(Comparison {
            path,
            negated,
            op,
            value,
        }))
    }

    fn set(&mut self) -> Result<Literal, Error> {
        self.expect(&Tok::LParen, "( to start a set")?;
        let mut items = Vec::new();
        if self.eat(&Tok::RParen) {
            return Ok(Literal::Set(items));
        }
        loop {
            items.push(self.literal(true)?);
            if self.eat(&Tok::RParen) {
                return Ok(Literal::Set(items));
            }
            self.expect(&Tok::Comma, ", or )")?;
        }
    }

    fn literal(&mut self, bool_ok: bool) -> Result<Literal, Error> {
        let lit = match self.peek().cloned() {
            Some(Tok::Str(s)) => Literal::String(s),
            Some(Tok::Bool(b)) if bool_ok => Literal::Bool(b),
            Some(Tok::Ts(t)) => Literal::Timestamp(t),
            Some(Tok::Bin(b)) => Literal::Binary(b),
            Some(Tok::Hex(h)) => Literal::Hex(h),
            Some(Tok::Num { text, neg, float }) => {
                let signed = if neg { format!("-{text}") } else { text };
                if float {
                    Literal::Float(signed.parse().map_err(|_| self.err("a number"))?)
                } else {
                    Literal::Int(
                        signed
                            .parse()
                            .map_err(|_| self.err("an integer that fits in 64 bits"))?,
                    )
                }
            }
            _ => return Err(self.err("a literal value")),
        };
        self.at += 1;
        Ok(lit)
    }

    fn path(&mut self) -> Result<ObjectPath, Error> {
        let object_type = match self.peek().cloned() {
            Some(Tok::Ident(t)) => t,
            _ => return Err(self.err("an object type like ipv4-addr")),
        };
        self.at += 1;
        self.expect(&Tok::Colon, ": after the object type")?;
        let mut steps = vec![self.property_name()?];
        loop {
            if self.eat(&Tok::Dot) {
                steps.push(self.property_name()?);
            } else if self.eat(&Tok::LBrack) {
                let step = match self.peek().cloned() {
                    Some(Tok::Star) => PathStep::AnyIndex,
                    Some(Tok::Num {
                        text,
                        neg,
                        float: false,
                    }) => {
                        let n: i64 = text
                            .parse()
                            .map_err(|_| self.err("an index that fits in 64 bits"))?;
                        PathStep::Index(if neg { -n } else { n })
                    }
                    _ => return Err(self.err("an index or *")),
                };
                self.at += 1;
                self.expect(&Tok::RBrack, "]")?;
                steps.push(step);
            } else {
                return Ok(ObjectPath { object_type, steps });
            }
        }
    }

    fn property_name(&mut self) -> Result<PathStep, Error> {
        let step = match self.peek().cloned() {
            Some(Tok::Ident(p)) if !p.contains('-') => PathStep::Property(p),
            Some(Tok::Str(p)) => PathStep::Property(p),
            _ => return Err(self.err("a property name (quote names that hold a hyphen)")),
        };
        self.at += 1;
        Ok(step)
    }
}

fn one_or<T>(mut parts: Vec<T>, many: impl FnOnce(Vec<T>) -> T) -> T {
    if parts.len() == 1
        && let Some(p) = parts.pop()
    {
        return p;
    }
    many(parts)
}

impl Pattern {
    /// Parses a STIX 2.1 pattern.
    pub fn parse(s: &str) -> Result<Pattern, Error> {
        let toks = Lexer { s, pos: 0 }.tokens()?;
        let mut p = Parser {
            src: s,
            toks,
            at: 0,
            depth: 0,
        };
        let root = p.observations()?;
        if p.peek().is_some() {
            return Err(p.err("the end of the pattern"));
        }
        let pattern = Pattern { root };
        pattern.check_hashes()?;
        Ok(pattern)
    }

    fn check_hashes(&self) -> Result<(), Error> {
        let mut bad = None;
        self.root.each_test(&mut |c| {
            let key = match c.path.steps.as_slice() {
                [PathStep::Property(h), PathStep::Property(k)] if h == "hashes" => k,
                _ => return,
            };
            let (Some(len), Literal::String(v)) = (hash_hex_len(key), &c.value) else {
                return;
            };
            if bad.is_none() && !(v.len() == len && v.bytes().all(|b| b.is_ascii_hexdigit())) {
                bad = Some(format!(
                    "{v:?} is not a valid {key} hash ({len} hex digits)"
                ));
            }
        });
        match bad {
            Some(reason) => Err(Error::PatternSyntax {
                offset: 0,
                expected: reason,
            }),
            None => Ok(()),
        }
    }

    /// The IOCs this pattern is a disjunction of, or why it is not one.
    pub fn iocs(&self) -> Result<Vec<Ioc>, Error> {
        let mut out = Vec::new();
        observation_iocs(&self.root, &mut out)?;
        let mut seen = std::collections::BTreeSet::new();
        out.retain(|i| seen.insert(i.clone()));
        Ok(out)
    }
}

impl ObservationExpr {
    fn each_test(&self, f: &mut impl FnMut(&Comparison)) {
        match self {
            ObservationExpr::Observation(c) => c.each_test(f),
            ObservationExpr::And(v) | ObservationExpr::Or(v) | ObservationExpr::FollowedBy(v) => {
                v.iter().for_each(|e| e.each_test(f));
            }
            ObservationExpr::Qualified { inner, .. } => inner.each_test(f),
        }
    }
}

impl ComparisonExpr {
    fn each_test(&self, f: &mut impl FnMut(&Comparison)) {
        match self {
            ComparisonExpr::And(v) | ComparisonExpr::Or(v) => v.iter().for_each(|e| e.each_test(f)),
            ComparisonExpr::Test(c) => f(c),
        }
    }
}

fn unsupported(reason: impl Into<String>) -> Error {
    Error::UnsupportedPattern {
        reason: reason.into(),
    }
}

fn observation_iocs(e: &ObservationExpr, out: &mut Vec<Ioc>) -> Result<(), Error> {
    match e {
        ObservationExpr::Observation(c) => comparison_iocs(c, out),
        ObservationExpr::Or(v) => v.iter().try_for_each(|e| observation_iocs(e, out)),
        ObservationExpr::And(_) => Err(unsupported(
            "AND between observations needs all of them seen; a list of IOCs matches any one",
        )),
        ObservationExpr::FollowedBy(_) => Err(unsupported(
            "FOLLOWEDBY needs observations in order; a list of IOCs matches any one",
        )),
        ObservationExpr::Qualified { .. } => Err(unsupported(
            "qualifiers (WITHIN, REPEATS, START/STOP) restrict when a match counts; IOCs carry no such condition",
        )),
    }
}

fn comparison_iocs(c: &ComparisonExpr, out: &mut Vec<Ioc>) -> Result<(), Error> {
    match c {
        ComparisonExpr::Or(v) => v.iter().try_for_each(|c| comparison_iocs(c, out)),
        ComparisonExpr::And(_) => Err(unsupported(
            "AND inside an observation joins conditions that no single IOC expresses",
        )),
        ComparisonExpr::Test(t) => test_iocs(t, out),
    }
}

const SUPPORTED: &str = "ipv4-addr:value, ipv6-addr:value, domain-name:value, url:value and file:hashes.(MD5|SHA-1|SHA-256|SHA-512)";

fn test_iocs(t: &Comparison, out: &mut Vec<Ioc>) -> Result<(), Error> {
    if t.negated {
        return Err(unsupported(format!(
            "NOT on {} matches everything else",
            t.path
        )));
    }
    let values: Vec<&str> = match (&t.op, &t.value) {
        (Op::Eq, Literal::String(s)) => vec![s.as_str()],
        (Op::In, Literal::Set(items)) => items
            .iter()
            .map(|i| match i {
                Literal::String(s) => Ok(s.as_str()),
                _ => Err(unsupported(format!(
                    "IN on {} with a value that is not a string",
                    t.path
                ))),
            })
            .collect::<Result<_, _>>()?,
        (Op::IsSubset, Literal::String(s))
            if matches!(t.path.object_type.as_str(), "ipv4-addr" | "ipv6-addr") =>
        {
            vec![s.as_str()]
        }
        (op, _) => {
            return Err(unsupported(format!(
                "operator {op:?} on {}: only =, IN and (for addresses) ISSUBSET with string values become IOCs",
                t.path
            )));
        }
    };
    let not_supported = || {
        unsupported(format!(
            "comparison on {} is not an IOC kind mamori matches ({SUPPORTED})",
            t.path
        ))
    };
    let value_step = matches!(t.path.steps.as_slice(), [PathStep::Property(p)] if p == "value");
    for v in values {
        let ioc = match t.path.object_type.as_str() {
            "ipv4-addr" | "ipv6-addr" if value_step => {
                address_ioc(v, t.path.object_type == "ipv6-addr").ok_or_else(|| {
                    unsupported(format!(
                        "{v:?} is not an address or CIDR block for {}",
                        t.path
                    ))
                })?
            }
            "domain-name" if value_step => Ioc::Domain(
                domain(v).ok_or_else(|| unsupported(format!("{v:?} is not a domain name")))?,
            ),
            "url" if value_step => {
                if v.is_empty() || v.chars().any(char::is_whitespace) || !v.contains(':') {
                    return Err(unsupported(format!("{v:?} is not a URL")));
                }
                Ioc::Url(v.to_owned())
            }
            "file" => match t.path.steps.as_slice() {
                [PathStep::Property(h), PathStep::Property(k)] if h == "hashes" => {
                    let algorithm = HashAlgorithm::from_key(k).ok_or_else(not_supported)?;
                    if v.len() != algorithm.hex_len() || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(unsupported(format!(
                            "{v:?} is not a {} hash",
                            algorithm.stix_name()
                        )));
                    }
                    Ioc::Hash {
                        algorithm,
                        value: v.to_ascii_lowercase(),
                    }
                }
                _ => return Err(not_supported()),
            },
            _ => return Err(not_supported()),
        };
        out.push(ioc);
    }
    Ok(())
}

fn address_ioc(v: &str, v6: bool) -> Option<Ioc> {
    let (a, p) = match v.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (v, None),
    };
    let addr: IpAddr = if v6 {
        IpAddr::V6(a.parse::<Ipv6Addr>().ok()?)
    } else {
        IpAddr::V4(a.parse::<Ipv4Addr>().ok()?)
    };
    let max = if v6 { 128 } else { 32 };
    let prefix = match p {
        None => max,
        Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse::<u8>().ok().filter(|n| *n <= max)?
        }
        Some(_) => return None,
    };
    if prefix == max {
        return Some(Ioc::Address(addr));
    }
    let masked = match addr {
        IpAddr::V4(x) => {
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(x) & m))
        }
        IpAddr::V6(x) => {
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(x) & m))
        }
    };
    Some(Ioc::Network {
        addr: masked,
        prefix_len: prefix,
    })
}

fn domain(v: &str) -> Option<String> {
    let d = v.strip_suffix('.').unwrap_or(v).to_lowercase();
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        });
    ok.then_some(d)
}

/// The IOCs of an indicator: its pattern must be a `stix` pattern of the supported subset.
pub fn indicator_iocs(indicator: &Indicator) -> Result<Vec<Ioc>, Error> {
    if indicator.pattern_type != "stix" {
        return Err(unsupported(format!(
            "pattern_type {:?}: only stix patterns become IOCs",
            indicator.pattern_type
        )));
    }
    Pattern::parse(&indicator.pattern)?.iocs()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iocs(p: &str) -> Vec<Ioc> {
        Pattern::parse(p).unwrap().iocs().unwrap()
    }

    #[test]
    fn subset_becomes_iocs() {
        assert_eq!(
            iocs(
                "[ipv4-addr:value = '198.51.100.1' OR ipv4-addr:value = '203.0.113.0/24'] OR [domain-name:value = 'Evil.EXAMPLE.com.']"
            ),
            vec![
                Ioc::Address("198.51.100.1".parse().unwrap()),
                Ioc::Network {
                    addr: "203.0.113.0".parse().unwrap(),
                    prefix_len: 24
                },
                Ioc::Domain("evil.example.com".into()),
            ]
        );
        assert_eq!(
            iocs("[ipv4-addr:value ISSUBSET '198.51.100.7/24']"),
            vec![Ioc::Network {
                addr: "198.51.100.0".parse().unwrap(),
                prefix_len: 24
            }]
        );
        assert_eq!(
            iocs("[ipv6-addr:value IN ('2001:db8::1', '2001:db8::/32')]"),
            vec![
                Ioc::Address("2001:db8::1".parse().unwrap()),
                Ioc::Network {
                    addr: "2001:db8::".parse().unwrap(),
                    prefix_len: 32
                },
            ]
        );
        assert_eq!(
            iocs(
                "[file:hashes.'SHA-256' = 'AEC070645FE53EE3B3763059376134F058CC337247C978ADD178B6CCDFB0019F' OR file:hashes.md5 = 'cead3f77f6cda6ec00f57d76c9a6879f']"
            ),
            vec![
                Ioc::Hash {
                    algorithm: HashAlgorithm::Sha256,
                    value: "aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f"
                        .into()
                },
                Ioc::Hash {
                    algorithm: HashAlgorithm::Md5,
                    value: "cead3f77f6cda6ec00f57d76c9a6879f".into()
                },
            ]
        );
    }

    #[test]
    fn outside_the_subset_is_unsupported_not_wrong() {
        for p in [
            "[ipv4-addr:value = '198.51.100.1' AND domain-name:value = 'example.com']",
            "[ipv4-addr:value = '198.51.100.1'] AND [domain-name:value = 'example.com']",
            "[ipv4-addr:value = '198.51.100.1'] WITHIN 5 SECONDS",
            "[ipv4-addr:value != '198.51.100.1']",
            "[ipv4-addr:value NOT = '198.51.100.1']",
            "[file:name = 'evil.exe']",
            "[domain-name:value = 'domain autuo.xicp.net']",
            "[ipv6-addr:value = '198.51.100.1']",
        ] {
            let e = Pattern::parse(p).unwrap().iocs().unwrap_err();
            assert!(matches!(e, Error::UnsupportedPattern { .. }), "{p}: {e}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{}[a:b = 1]{}", "(".repeat(200), ")".repeat(200));
        let e = Pattern::parse(&deep).unwrap_err().to_string();
        assert!(e.contains("levels of nesting"), "{e}");
    }
}
