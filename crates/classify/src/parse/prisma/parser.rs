//! The block/line parser over the tokens: blocks, fields, attributes.

use super::lexer::{Tok, Token};
use super::{Attr, Block, BlockKind, Field, ParseError, Schema};

pub(super) struct Parser {
    pub(super) toks: Vec<Token>,
    pub(super) pos: usize,
    pub(super) last: (u32, u32),
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.toks.get(self.pos).cloned();
        if let Some(t) = &t {
            self.last = (t.line, t.column);
            self.pos += 1;
        }
        t
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        let (line, column) = self
            .toks
            .get(self.pos)
            .map(|t| (t.line, t.column))
            .unwrap_or(self.last);
        Err(ParseError {
            line,
            column,
            message: message.into(),
        })
    }

    fn skip_newlines(&mut self) {
        while self.peek() == Some(&Tok::Newline) {
            self.pos += 1;
        }
    }

    fn ident(&mut self, what: &str) -> Result<(String, u32), ParseError> {
        match self.peek() {
            Some(Tok::Ident(_)) => match self.next() {
                Some(Token {
                    tok: Tok::Ident(s),
                    line,
                    ..
                }) => Ok((s, line)),
                _ => self.err(format!("expected {what}")),
            },
            _ => self.err(format!("expected {what}")),
        }
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Punct(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), ParseError> {
        if self.eat(c) {
            Ok(())
        } else {
            self.err(format!("expected `{c}`"))
        }
    }

    /// Balanced `( ... )`, `[ ... ]` or `{ ... }` group starting at the current open token,
    /// normalized to token text. Newlines inside are allowed.
    fn group(&mut self) -> Result<String, ParseError> {
        let open = match self.peek() {
            Some(Tok::Punct(c @ ('(' | '[' | '{'))) => *c,
            _ => return self.err("expected `(`"),
        };
        let _ = open;
        let mut depth = 0usize;
        let mut out = String::new();
        loop {
            let Some(t) = self.next() else {
                return self.err("unclosed parenthesis or bracket");
            };
            match t.tok {
                Tok::Punct(c @ ('(' | '[' | '{')) => {
                    depth += 1;
                    out.push(c);
                }
                Tok::Punct(c @ (')' | ']' | '}')) => {
                    depth = depth.saturating_sub(1);
                    out.push(c);
                    if depth == 0 {
                        break;
                    }
                }
                Tok::Punct(c) => out.push(c),
                Tok::Ident(s) | Tok::Num(s) => {
                    if out.ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                        out.push(' ');
                    }
                    out.push_str(&s);
                }
                Tok::Str(s) => {
                    out.push('"');
                    out.push_str(&s);
                    out.push('"');
                }
                Tok::Newline => {}
            }
        }
        // Strip the outer pair.
        let inner = out.get(1..out.len().saturating_sub(1)).unwrap_or_default();
        Ok(inner.to_string())
    }

    /// `@name[.name](args)?` after the `@` (or `@@`) has been consumed.
    fn attr_body(&mut self, line: u32) -> Result<Attr, ParseError> {
        let (mut name, _) = self.ident("attribute name")?;
        while self.eat('.') {
            let (part, _) = self.ident("attribute name")?;
            name.push('.');
            name.push_str(&part);
        }
        let args = if self.peek() == Some(&Tok::Punct('(')) {
            self.group()?
        } else {
            String::new()
        };
        Ok(Attr { name, args, line })
    }

    fn end_of_line(&mut self) -> Result<(), ParseError> {
        match self.peek() {
            None | Some(Tok::Newline) | Some(Tok::Punct('}')) => Ok(()),
            _ => self.err("unexpected token at end of declaration"),
        }
    }

    fn block(&mut self, kind: BlockKind, line: u32) -> Result<Block, ParseError> {
        let (name, _) = self.ident("block name")?;
        self.skip_newlines();
        self.expect('{')?;
        let mut block = Block {
            kind,
            name,
            line,
            fields: Vec::new(),
            attrs: Vec::new(),
        };
        loop {
            self.skip_newlines();
            match self.peek() {
                None => return self.err(format!("unclosed block `{}`", block.name)),
                Some(Tok::Punct('}')) => {
                    self.pos += 1;
                    return Ok(block);
                }
                Some(Tok::Punct('@')) => {
                    let at_line = self.toks[self.pos].line;
                    self.pos += 1;
                    if !self.eat('@') {
                        return self.err("expected `@@` for a block attribute");
                    }
                    let a = self.attr_body(at_line)?;
                    block.attrs.push(a);
                    self.end_of_line()?;
                }
                Some(Tok::Ident(_)) => {
                    let (fname, fline) = self.ident("field name")?;
                    let field = match kind {
                        BlockKind::Datasource | BlockKind::Generator => {
                            self.expect('=')?;
                            let mut value = String::new();
                            while !matches!(
                                self.peek(),
                                None | Some(Tok::Newline | Tok::Punct('}'))
                            ) {
                                if matches!(self.peek(), Some(Tok::Punct('(' | '[' | '{'))) {
                                    let g = self.group()?;
                                    value.push('(');
                                    value.push_str(&g);
                                    value.push(')');
                                    continue;
                                }
                                match self.next().map(|t| t.tok) {
                                    Some(Tok::Ident(s) | Tok::Num(s)) => value.push_str(&s),
                                    Some(Tok::Str(s)) => {
                                        value.push('"');
                                        value.push_str(&s);
                                        value.push('"');
                                    }
                                    Some(Tok::Punct(c)) => value.push(c),
                                    _ => {}
                                }
                            }
                            Field {
                                name: fname,
                                ty: value,
                                optional: false,
                                list: false,
                                attrs: Vec::new(),
                                line: fline,
                            }
                        }
                        BlockKind::Enum => {
                            let attrs = self.field_attrs()?;
                            Field {
                                name: fname,
                                ty: String::new(),
                                optional: false,
                                list: false,
                                attrs,
                                line: fline,
                            }
                        }
                        BlockKind::Model | BlockKind::View | BlockKind::Type => {
                            let (mut ty, _) = self.ident("field type")?;
                            while self.eat('.') {
                                let (part, _) = self.ident("field type")?;
                                ty.push('.');
                                ty.push_str(&part);
                            }
                            if self.peek() == Some(&Tok::Punct('(')) {
                                let g = self.group()?;
                                ty = format!("{ty}({g})");
                            }
                            let mut list = false;
                            let mut optional = false;
                            if self.eat('[') {
                                self.expect(']')?;
                                list = true;
                            }
                            if self.eat('?') {
                                optional = true;
                            } else {
                                // `!` (required, legacy) is accepted and ignored.
                                let _ = self.eat('!');
                            }
                            let attrs = self.field_attrs()?;
                            Field {
                                name: fname,
                                ty,
                                optional,
                                list,
                                attrs,
                                line: fline,
                            }
                        }
                    };
                    block.fields.push(field);
                    self.end_of_line()?;
                }
                Some(_) => return self.err("expected a field, an attribute or `}`"),
            }
        }
    }

    fn field_attrs(&mut self) -> Result<Vec<Attr>, ParseError> {
        let mut attrs = Vec::new();
        while self.peek() == Some(&Tok::Punct('@')) {
            let line = self.toks[self.pos].line;
            self.pos += 1;
            if self.peek() == Some(&Tok::Punct('@')) {
                return self.err("block attribute `@@` after a field on the same line");
            }
            attrs.push(self.attr_body(line)?);
        }
        Ok(attrs)
    }

    pub(super) fn schema(&mut self) -> Result<Schema, ParseError> {
        let mut schema = Schema::default();
        loop {
            self.skip_newlines();
            if self.peek().is_none() {
                return Ok(schema);
            }
            let (kw, line) =
                self.ident("`model`, `enum`, `datasource`, `generator`, `view` or `type`")?;
            let kind = match kw.as_str() {
                "model" => BlockKind::Model,
                "view" => BlockKind::View,
                "type" => BlockKind::Type,
                "enum" => BlockKind::Enum,
                "datasource" => BlockKind::Datasource,
                "generator" => BlockKind::Generator,
                other => {
                    self.pos -= 1;
                    return self.err(format!("unknown block keyword `{other}`"));
                }
            };
            schema.blocks.push(self.block(kind, line)?);
        }
    }
}
