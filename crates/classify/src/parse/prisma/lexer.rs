//! Tokens of the Prisma Schema Language, with 1-based lines and columns.

use super::ParseError;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Ident(String),
    Str(String),
    Num(String),
    Punct(char),
    Newline,
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) line: u32,
    pub(super) column: u32,
}

pub(super) fn tokenize(src: &str) -> Result<Vec<Token>, ParseError> {
    let mut out = Vec::new();
    let mut chars = src.chars().peekable();
    let (mut line, mut column) = (1u32, 1u32);
    macro_rules! bump {
        () => {{
            let c = chars.next();
            if c == Some('\n') {
                line = line.saturating_add(1);
                column = 1;
            } else if c.is_some() {
                column = column.saturating_add(1);
            }
            c
        }};
    }
    while let Some(&c) = chars.peek() {
        let (l, col) = (line, column);
        match c {
            '\n' => {
                bump!();
                out.push(Token {
                    tok: Tok::Newline,
                    line: l,
                    column: col,
                });
            }
            c if c.is_whitespace() => {
                bump!();
            }
            '/' => {
                bump!();
                if chars.peek() == Some(&'/') {
                    while let Some(&c) = chars.peek() {
                        if c == '\n' {
                            break;
                        }
                        bump!();
                    }
                } else {
                    return Err(ParseError {
                        line: l,
                        column: col,
                        message: "unexpected `/` (comments start with `//`)".into(),
                    });
                }
            }
            '"' => {
                bump!();
                let mut s = String::new();
                loop {
                    match bump!() {
                        None | Some('\n') => {
                            return Err(ParseError {
                                line: l,
                                column: col,
                                message: "unterminated string".into(),
                            });
                        }
                        Some('\\') => {
                            s.push('\\');
                            if let Some(e) = bump!() {
                                s.push(e);
                            }
                        }
                        Some('"') => break,
                        Some(c) => s.push(c),
                    }
                }
                out.push(Token {
                    tok: Tok::Str(s),
                    line: l,
                    column: col,
                });
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut s = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_alphanumeric() || c == '_' || c == '-' {
                        s.push(c);
                        bump!();
                    } else {
                        break;
                    }
                }
                out.push(Token {
                    tok: Tok::Ident(s),
                    line: l,
                    column: col,
                });
            }
            c if c.is_ascii_digit() || c == '-' => {
                let mut s = String::new();
                s.push(c);
                bump!();
                while let Some(&c) = chars.peek() {
                    if c.is_ascii_alphanumeric() || c == '.' {
                        s.push(c);
                        bump!();
                    } else {
                        break;
                    }
                }
                out.push(Token {
                    tok: Tok::Num(s),
                    line: l,
                    column: col,
                });
            }
            '{' | '}' | '(' | ')' | '[' | ']' | ',' | ':' | '=' | '?' | '!' | '@' | '.' => {
                bump!();
                out.push(Token {
                    tok: Tok::Punct(c),
                    line: l,
                    column: col,
                });
            }
            other => {
                return Err(ParseError {
                    line: l,
                    column: col,
                    message: format!("unexpected character {other:?}"),
                });
            }
        }
    }
    Ok(out)
}
