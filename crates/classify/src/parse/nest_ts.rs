//! Read the NestJS API surface out of one TypeScript file with oxc (a real TypeScript parser).
//!
//! Why a parser and not regexes: decorators span lines, take strings, arrays, template literals
//! or `{ path, version }` objects, and may appear in comments or strings that must not count.
//! The AST gives exactly the decorators on classes and methods and the calls
//! (`app.setGlobalPrefix`, `app.enableVersioning`, `ThrottlerModule.forRoot`) that shape routes.
//! Values that are not literals (a constant, an expression) are kept as their source text, so a
//! change to them is still a change.

use oxc_allocator::Allocator;
use oxc_ast::ast::{
    Argument, ArrayExpressionElement, CallExpression, Class, ClassElement, Decorator, Expression,
    ObjectExpression, ObjectPropertyKind, TSInterfaceDeclaration, TSSignature, TSTypeAnnotation,
};
use oxc_ast_visit::{Visit, walk};
use oxc_parser::Parser;
use oxc_span::{GetSpan, SourceType, Span};

use crate::util::truncate;

/// A REST route declared by a controller method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    /// `GET`, `POST`, ...
    pub(crate) method: String,
    /// Controller path (without the global prefix).
    pub(crate) controller_path: String,
    /// Method path.
    pub(crate) path: String,
    /// `@Version` on the method, else the controller's `version`.
    pub(crate) version: Option<String>,
    /// `Class.method`.
    pub(crate) handler: String,
    /// 1-based line of the method decorator.
    pub(crate) line: u32,
}

/// A Socket.IO event handled by a gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    /// Gateway namespace (`/` when none).
    pub(crate) namespace: String,
    /// Event name.
    pub(crate) event: String,
    /// `Class.method`.
    pub(crate) handler: String,
    /// 1-based line.
    pub(crate) line: u32,
}

/// A setting whose change matters, with its normalized source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Setting {
    /// Identity (e.g. `ChatGateway` or `UsersController.create`).
    pub(crate) key: String,
    /// Normalized source text of the value.
    pub(crate) value: String,
    /// 1-based line.
    pub(crate) line: u32,
}

/// Everything the NestJS detector needs from one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NestFile {
    /// Routes.
    pub(crate) routes: Vec<Route>,
    /// Socket.IO events.
    pub(crate) events: Vec<Event>,
    /// Gateway `transports` options, by gateway class.
    pub(crate) transports: Vec<Setting>,
    /// `@Throttle` / `@SkipThrottle` decorators, by `Class` or `Class.method`, and
    /// `ThrottlerModule.forRoot(...)` calls.
    pub(crate) rate_limits: Vec<Setting>,
    /// `app.setGlobalPrefix('x')`.
    pub(crate) global_prefix: Option<Setting>,
    /// `app.enableVersioning({...})`: value is the `type` text, and the default version.
    pub(crate) versioning: Option<(Setting, Option<String>)>,
    /// Request and response types: DTO classes (by name, or carrying class-validator /
    /// `@nestjs/swagger` decorators) and DTO-named interfaces.
    pub(crate) types: Vec<TypeDecl>,
    /// Declared return types of route handlers (`Class.method` → the type inside
    /// `Promise<…>` / `Observable<…>`), when annotated.
    pub(crate) returns: Vec<Setting>,
    /// Protocol options wherever they are written outside a gateway decorator: `http2`,
    /// `allowEIO3`, `transports`, `httpVersion`, and `http2.createServer` / `spdy` calls.
    pub(crate) protocol: Vec<Setting>,
}

/// A request or response type declared in TypeScript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TypeDecl {
    /// Class or interface name.
    pub(crate) name: String,
    /// Whether it reads as a request type (class-validator decorators, or a name like
    /// `CreateUserDto`, `LoginInput`, `…Query`); else a response type.
    pub(crate) request: bool,
    /// Fields.
    pub(crate) fields: Vec<FieldDecl>,
    /// 1-based line.
    pub(crate) line: u32,
}

/// One field of a [`TypeDecl`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldDecl {
    /// Name.
    pub(crate) name: String,
    /// Type annotation text (whitespace collapsed), `any` when absent.
    pub(crate) ty: String,
    /// `?:`, or `@IsOptional()` / `@ApiPropertyOptional()`.
    pub(crate) optional: bool,
    /// 1-based line.
    pub(crate) line: u32,
}

/// Decorators that validate a request field (class-validator).
fn is_validator(name: &str) -> bool {
    (name.starts_with("Is") && name.len() > 2 && name.as_bytes()[2].is_ascii_uppercase())
        || matches!(
            name,
            "Min"
                | "Max"
                | "Length"
                | "MinLength"
                | "MaxLength"
                | "Matches"
                | "ValidateNested"
                | "ArrayMinSize"
                | "ArrayMaxSize"
                | "Contains"
                | "Equals"
                | "ValidateIf"
        )
}

/// Decorators that describe a DTO field without telling its direction.
fn is_dto_decorator(name: &str) -> bool {
    matches!(
        name,
        "ApiProperty"
            | "ApiPropertyOptional"
            | "ApiHideProperty"
            | "Expose"
            | "Exclude"
            | "Type"
            | "Field"
    ) || is_validator(name)
}

const DTO_SUFFIXES: &[&str] = &[
    "Dto", "DTO", "Response", "Request", "Input", "Payload", "Body", "Params", "Query", "Args",
    "Output", "Result",
];
const REQUEST_SUFFIXES: &[&str] = &[
    "Request", "Input", "Payload", "Body", "Params", "Query", "Args",
];
const REQUEST_PREFIXES: &[&str] = &[
    "Create", "Update", "Patch", "Upsert", "Delete", "Login", "Register", "SignIn", "SignUp",
    "Search", "Filter", "Find", "Query", "Send", "Set", "Reset", "Change", "Confirm", "Verify",
    "Invite", "Add", "Remove",
];

fn request_by_name(name: &str) -> bool {
    let core = name
        .strip_suffix("Dto")
        .or_else(|| name.strip_suffix("DTO"))
        .unwrap_or(name);
    REQUEST_SUFFIXES.iter().any(|s| core.ends_with(s))
        || REQUEST_PREFIXES.iter().any(|p| {
            core.strip_prefix(p)
                .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_uppercase()))
        })
}

fn dto_by_name(name: &str) -> bool {
    DTO_SUFFIXES
        .iter()
        .any(|s| name.ends_with(s) && name.len() > s.len())
}

/// `Promise<X>` / `Observable<X>` → `X`.
fn unwrap_async(t: &str) -> &str {
    for w in ["Promise<", "Observable<"] {
        if let Some(inner) = t.strip_prefix(w).and_then(|r| r.strip_suffix('>')) {
            return inner.trim();
        }
    }
    t
}

/// A parse failure: message and 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TsError {
    pub(crate) line: Option<u32>,
    pub(crate) message: String,
}

const HTTP: &[(&str, &str)] = &[
    ("Get", "GET"),
    ("Post", "POST"),
    ("Put", "PUT"),
    ("Patch", "PATCH"),
    ("Delete", "DELETE"),
    ("Options", "OPTIONS"),
    ("Head", "HEAD"),
    ("All", "ALL"),
];

/// Whether the text may hold anything this module reads (cheap filter before parsing).
pub(crate) fn interesting(text: &str) -> bool {
    // One pass for all the needles (was one `contains` scan per needle, a tenth of this
    // detector's time on a change of plain TypeScript files).
    static NEEDLES: std::sync::LazyLock<crate::util::AnyOf> =
        std::sync::LazyLock::new(|| crate::util::AnyOf::new(&INTERESTING));
    NEEDLES.is_in(text)
}

/// What makes a file worth parsing for the NestJS surface (any one of them, anywhere).
const INTERESTING: [&str; 17] = [
    "@Controller",
    "@WebSocketGateway",
    "@SubscribeMessage",
    "Throttle",
    "setGlobalPrefix",
    "enableVersioning",
    "Dto",
    "DTO",
    "class-validator",
    "@nestjs/swagger",
    "Response",
    "Input",
    "Payload",
    "http2",
    "allowEIO3",
    "transports",
    "httpVersion",
];

fn line_at(text: &str, offset: u32) -> u32 {
    let end = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(text.len());
    let n = text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count();
    u32::try_from(n + 1).unwrap_or(u32::MAX)
}

/// Deepest bracket nesting read (real sources stay far below).
const MAX_NESTING: usize = 400;

/// Parse `text` (TypeScript) and read its NestJS surface.
pub(crate) fn read(text: &str) -> Result<NestFile, TsError> {
    read_in(&mut Allocator::default(), text)
}

/// [`read`] with the parser's arena given (reset here first): a detector reading many files
/// reuses one per job instead of growing a fresh arena for each file.
pub(crate) fn read_in(allocator: &mut Allocator, text: &str) -> Result<NestFile, TsError> {
    if let Some(e) = too_deep(text) {
        return Err(e);
    }
    allocator.reset();
    let ret = Parser::new(allocator, text, SourceType::ts()).parse();
    of_parse(text, &ret)
}

/// oxc recurses on nesting: absurd nesting is refused before parsing instead of risking the
/// stack.
pub(crate) fn too_deep(text: &str) -> Option<TsError> {
    let mut depth = 0usize;
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > MAX_NESTING {
            return Some(TsError {
                line: Some(line_at(text, u32::try_from(i).unwrap_or(u32::MAX))),
                message: format!("brackets nested deeper than {MAX_NESTING}: not read"),
            });
        }
    }
    None
}

/// The NestJS surface of `text` from its parse `ret` (a TypeScript parse: [`read_in`]'s own, or
/// one shared with the comment-only check, [`crate::parse::ts_shared`]); an error when the parse
/// failed.
pub(crate) fn of_parse(
    text: &str,
    ret: &oxc_parser::ParserReturn<'_>,
) -> Result<NestFile, TsError> {
    if ret.panicked || ret.diagnostics.has_errors() {
        let first = ret.diagnostics.errors().next();
        let message = first
            .map(|d| d.message.to_string())
            .unwrap_or_else(|| "parser gave up".into());
        let line = first
            .and_then(|d| d.labels.first())
            .map(|l| line_at(text, l.offset()));
        return Err(TsError { line, message });
    }
    let mut c = Collector {
        text,
        out: NestFile::default(),
        in_decorator: 0,
    };
    c.visit_program(&ret.program);
    Ok(c.out)
}

struct Collector<'t> {
    text: &'t str,
    out: NestFile,
    /// Inside a decorator (a gateway's own `transports` is read with the gateway).
    in_decorator: usize,
}

/// A literal value, or the expression's source text in `${…}`.
enum Lit {
    Str(String),
    Many(Vec<String>),
    Other(String),
}

impl Collector<'_> {
    fn src(&self, span: Span) -> String {
        let s = self
            .text
            .get(span.start as usize..span.end as usize)
            .unwrap_or("");
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    fn line(&self, span: Span) -> u32 {
        line_at(self.text, span.start)
    }

    fn lit(&self, e: &Expression<'_>) -> Lit {
        match e {
            Expression::StringLiteral(s) => Lit::Str(s.value.as_str().to_string()),
            Expression::TemplateLiteral(t) if t.expressions.is_empty() => {
                Lit::Str(t.quasis.iter().map(|q| q.value.raw.as_str()).collect())
            }
            Expression::NumericLiteral(n) => Lit::Str(n.value.to_string()),
            Expression::ArrayExpression(a) => {
                let mut v = Vec::new();
                for el in &a.elements {
                    match el {
                        ArrayExpressionElement::SpreadElement(_)
                        | ArrayExpressionElement::Elision(_) => {
                            return Lit::Other(self.src(a.span));
                        }
                        other => match self.lit(other.to_expression()) {
                            Lit::Str(s) => v.push(s),
                            _ => return Lit::Other(self.src(a.span)),
                        },
                    }
                }
                Lit::Many(v)
            }
            other => Lit::Other(self.src(other.span())),
        }
    }

    fn lit_strings(&self, e: &Expression<'_>) -> Vec<String> {
        match self.lit(e) {
            Lit::Str(s) => vec![s],
            Lit::Many(v) if !v.is_empty() => v,
            Lit::Many(_) => vec![String::new()],
            Lit::Other(src) => vec![format!("${{{src}}}")],
        }
    }

    fn lit_text(&self, e: &Expression<'_>) -> String {
        match self.lit(e) {
            Lit::Str(s) => s,
            Lit::Many(v) => v.join("|"),
            Lit::Other(src) => format!("${{{src}}}"),
        }
    }

    fn prop<'b, 'a>(obj: &'b ObjectExpression<'a>, name: &str) -> Option<&'b Expression<'a>> {
        obj.properties.iter().find_map(|p| match p {
            ObjectPropertyKind::ObjectProperty(p)
                if p.key.static_name().as_deref() == Some(name) =>
            {
                Some(&p.value)
            }
            _ => None,
        })
    }

    /// Decorator name and arguments: `@Get('x')` → (`Get`, [args]); `@Get` → (`Get`, []).
    fn decorator<'b, 'a>(d: &'b Decorator<'a>) -> Option<(String, Option<&'b CallExpression<'a>>)> {
        let (callee, call) = match &d.expression {
            Expression::CallExpression(c) => (&c.callee, Some(&**c)),
            other => (other, None),
        };
        let name = match callee {
            Expression::Identifier(i) => i.name.as_str().to_string(),
            Expression::StaticMemberExpression(m) => m.property.name.as_str().to_string(),
            _ => return None,
        };
        Some((name, call))
    }

    fn first_arg<'b, 'a>(call: Option<&'b CallExpression<'a>>) -> Option<&'b Expression<'a>> {
        call.and_then(|c| c.arguments.first())
            .and_then(Argument::as_expression)
    }

    fn class(&mut self, class: &Class<'_>) {
        let cname = class
            .id
            .as_ref()
            .map(|i| i.name.as_str().to_string())
            .unwrap_or_else(|| "(anonymous)".into());
        let mut controller: Option<(Vec<String>, Option<String>)> = None;
        let mut gateway_ns: Option<String> = None;
        for d in &class.decorators {
            let Some((name, call)) = Self::decorator(d) else {
                continue;
            };
            match name.as_str() {
                "Controller" => {
                    let (paths, version) = match Self::first_arg(call) {
                        None => (vec![String::new()], None),
                        Some(Expression::ObjectExpression(o)) => (
                            Self::prop(o, "path")
                                .map(|p| self.lit_strings(p))
                                .unwrap_or_else(|| vec![String::new()]),
                            Self::prop(o, "version").map(|v| self.lit_text(v)),
                        ),
                        Some(e) => (self.lit_strings(e), None),
                    };
                    controller = Some((paths, version));
                }
                "WebSocketGateway" => {
                    let args: Vec<&Expression<'_>> = call
                        .map(|c| {
                            c.arguments
                                .iter()
                                .filter_map(Argument::as_expression)
                                .collect()
                        })
                        .unwrap_or_default();
                    let opts = args.iter().find_map(|a| match a {
                        Expression::ObjectExpression(o) => Some(&**o),
                        _ => None,
                    });
                    let ns = opts
                        .and_then(|o| Self::prop(o, "namespace"))
                        .map(|n| self.lit_text(n));
                    gateway_ns = Some(ns.unwrap_or_else(|| "/".into()));
                    let transports = opts
                        .and_then(|o| Self::prop(o, "transports"))
                        .map(|t| self.src(t.span()))
                        .unwrap_or_else(|| "(default)".into());
                    self.out.transports.push(Setting {
                        key: cname.clone(),
                        value: transports,
                        line: self.line(d.span),
                    });
                }
                "Throttle" | "SkipThrottle" => {
                    self.out.rate_limits.push(Setting {
                        key: cname.clone(),
                        value: self.src(d.span),
                        line: self.line(d.span),
                    });
                }
                _ => {}
            }
        }
        self.dto_class(&cname, class);
        for el in &class.body.body {
            let ClassElement::MethodDefinition(m) = el else {
                continue;
            };
            let mname = m
                .key
                .static_name()
                .map(|s| s.to_string())
                .unwrap_or_else(|| "(computed)".into());
            let handler = format!("{cname}.{mname}");
            let mut version: Option<String> = None;
            let mut routes: Vec<(String, Vec<String>, u32)> = Vec::new();
            for d in &m.decorators {
                let Some((name, call)) = Self::decorator(d) else {
                    continue;
                };
                if let Some((_, verb)) = HTTP.iter().find(|(n, _)| *n == name) {
                    let paths = Self::first_arg(call)
                        .map(|e| self.lit_strings(e))
                        .unwrap_or_else(|| vec![String::new()]);
                    routes.push(((*verb).to_string(), paths, self.line(d.span)));
                } else if name == "Version" {
                    version = Self::first_arg(call).map(|e| self.lit_text(e));
                } else if name == "SubscribeMessage" {
                    if let Some(ns) = &gateway_ns {
                        let event = Self::first_arg(call)
                            .map(|e| self.lit_text(e))
                            .unwrap_or_default();
                        self.out.events.push(Event {
                            namespace: ns.clone(),
                            event,
                            handler: handler.clone(),
                            line: self.line(d.span),
                        });
                    }
                } else if name == "Throttle" || name == "SkipThrottle" {
                    self.out.rate_limits.push(Setting {
                        key: handler.clone(),
                        value: self.src(d.span),
                        line: self.line(d.span),
                    });
                }
            }
            if controller.is_some()
                && !routes.is_empty()
                && let Some(rt) = &m.value.return_type
            {
                let t = self.type_text(rt);
                self.out.returns.push(Setting {
                    key: handler.clone(),
                    value: unwrap_async(&t).to_string(),
                    line: self.line(rt.span),
                });
            }
            if let Some((cpaths, cversion)) = &controller {
                for (verb, paths, line) in routes {
                    for cp in cpaths {
                        for p in &paths {
                            self.out.routes.push(Route {
                                method: verb.clone(),
                                controller_path: cp.clone(),
                                path: p.clone(),
                                version: version.clone().or_else(|| cversion.clone()),
                                handler: handler.clone(),
                                line,
                            });
                        }
                    }
                }
            }
        }
    }

    fn type_text(&self, t: &TSTypeAnnotation<'_>) -> String {
        self.src(t.type_annotation.span())
    }

    fn dto_class(&mut self, cname: &str, class: &Class<'_>) {
        let mut fields = Vec::new();
        let (mut decorated, mut validated) = (false, false);
        for el in &class.body.body {
            let ClassElement::PropertyDefinition(p) = el else {
                continue;
            };
            if p.r#static {
                continue;
            }
            let Some(name) = p.key.static_name() else {
                continue;
            };
            // With class-validator the validators decide: a validated field without
            // `@IsOptional()` is rejected when missing, whatever `?` or the Swagger docs say.
            let (mut checks, mut is_optional, mut documented_optional) = (false, false, false);
            for d in &p.decorators {
                if let Some((dn, _)) = Self::decorator(d) {
                    decorated |= is_dto_decorator(&dn);
                    checks |= is_validator(&dn) && dn != "IsOptional";
                    is_optional |= dn == "IsOptional";
                    documented_optional |= dn == "ApiPropertyOptional";
                }
            }
            validated |= checks;
            let optional = if checks {
                is_optional
            } else {
                p.optional || is_optional || documented_optional
            };
            fields.push(FieldDecl {
                name: name.to_string(),
                ty: p
                    .type_annotation
                    .as_ref()
                    .map(|t| self.type_text(t))
                    .unwrap_or_else(|| "any".into()),
                optional,
                line: self.line(p.span),
            });
        }
        if fields.is_empty() || !(decorated || dto_by_name(cname)) {
            return;
        }
        self.out.types.push(TypeDecl {
            name: cname.to_string(),
            request: validated || request_by_name(cname),
            fields,
            line: self.line(class.span),
        });
    }

    fn interface(&mut self, it: &TSInterfaceDeclaration<'_>) {
        let name = it.id.name.as_str();
        if !dto_by_name(name) {
            return;
        }
        let fields: Vec<FieldDecl> = it
            .body
            .body
            .iter()
            .filter_map(|sig| match sig {
                TSSignature::TSPropertySignature(p) => Some(FieldDecl {
                    name: p.key.static_name()?.to_string(),
                    ty: p
                        .type_annotation
                        .as_ref()
                        .map(|t| self.type_text(t))
                        .unwrap_or_else(|| "any".into()),
                    optional: p.optional,
                    line: self.line(p.span),
                }),
                _ => None,
            })
            .collect();
        if fields.is_empty() {
            return;
        }
        self.out.types.push(TypeDecl {
            name: name.to_string(),
            request: request_by_name(name),
            fields,
            line: self.line(it.span),
        });
    }

    fn object(&mut self, o: &ObjectExpression<'_>) {
        if self.in_decorator > 0 {
            return;
        }
        for p in &o.properties {
            let ObjectPropertyKind::ObjectProperty(p) = p else {
                continue;
            };
            let Some(k) = p.key.static_name() else {
                continue;
            };
            if matches!(
                k.as_ref(),
                "http2" | "allowEIO3" | "transports" | "httpVersion"
            ) {
                self.out.protocol.push(Setting {
                    key: k.to_string(),
                    value: self.src(p.value.span()),
                    line: self.line(p.span),
                });
            }
        }
    }

    fn call(&mut self, call: &CallExpression<'_>) {
        let Expression::StaticMemberExpression(m) = &call.callee else {
            return;
        };
        let method = m.property.name.as_str();
        let line = self.line(call.span);
        if let Expression::Identifier(obj) = &m.object
            && matches!(obj.name.as_str(), "http2" | "spdy")
            && matches!(method, "createServer" | "createSecureServer")
        {
            self.out.protocol.push(Setting {
                key: format!("{}.{method}", obj.name.as_str()),
                value: "used".into(),
                line,
            });
        }
        match method {
            "setGlobalPrefix" => {
                if let Some(e) = Self::first_arg(Some(call)) {
                    let v = self.lit_text(e);
                    self.out.global_prefix = Some(Setting {
                        key: "globalPrefix".into(),
                        value: v,
                        line,
                    });
                }
            }
            "enableVersioning" => {
                let (ty, default) = match Self::first_arg(Some(call)) {
                    Some(Expression::ObjectExpression(o)) => (
                        Self::prop(o, "type")
                            .map(|t| self.src(t.span()))
                            .unwrap_or_default(),
                        Self::prop(o, "defaultVersion").map(|v| self.lit_text(v)),
                    ),
                    _ => (String::new(), None),
                };
                self.out.versioning = Some((
                    Setting {
                        key: "versioning".into(),
                        value: ty,
                        line,
                    },
                    default,
                ));
            }
            "forRoot" | "forRootAsync" => {
                if let Expression::Identifier(obj) = &m.object
                    && obj.name.as_str() == "ThrottlerModule"
                {
                    self.out.rate_limits.push(Setting {
                        key: format!("ThrottlerModule.{method}"),
                        value: truncate(&self.src(call.span), 400),
                        line,
                    });
                }
            }
            _ => {}
        }
    }
}

impl<'a> Visit<'a> for Collector<'_> {
    fn visit_class(&mut self, it: &Class<'a>) {
        self.class(it);
        walk::walk_class(self, it);
    }

    fn visit_call_expression(&mut self, it: &CallExpression<'a>) {
        self.call(it);
        walk::walk_call_expression(self, it);
    }

    fn visit_ts_interface_declaration(&mut self, it: &TSInterfaceDeclaration<'a>) {
        self.interface(it);
        walk::walk_ts_interface_declaration(self, it);
    }

    fn visit_object_expression(&mut self, it: &ObjectExpression<'a>) {
        self.object(it);
        walk::walk_object_expression(self, it);
    }

    fn visit_decorator(&mut self, it: &Decorator<'a>) {
        self.in_decorator += 1;
        walk::walk_decorator(self, it);
        self.in_decorator -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-pass relevance check answers what one `contains` per needle answers.
    #[test]
    fn interesting_is_any_needle() {
        let naive = |t: &str| INTERESTING.iter().any(|n| t.contains(n));
        let mut texts = crate::util::needle_texts(
            &INTERESTING,
            &[
                "",
                "D",
                "Dt",
                "export const x = 1;\n",
                "import { helper } from './helper';\n\n/** Module 7. */\nexport function f7() {}\n",
                "dto DtO dTo httpversion Http2 @controller",
            ],
        );
        // A needle with a two-byte character inside: no match, and no panic on the boundary.
        texts.extend(
            INTERESTING
                .iter()
                .map(|n| format!("{}é{}", &n[..1], &n[1..])),
        );
        for t in &texts {
            assert_eq!(interesting(t), naive(t), "{t:?}");
        }
    }

    #[test]
    fn reads_controllers_gateways_and_bootstrap() {
        let src = r#"
import { Controller, Get, Post, Version } from '@nestjs/common';

// @Get('commented-out') must not count
@Controller({ path: 'messages', version: '2' })
export class MessagesController {
  @Get()
  list() {}

  @Post(':id/reactions')
  @Throttle({ default: { limit: 5, ttl: 60000 } })
  react() {}

  @Version('3')
  @Get(['search', 'find'])
  search() { return '@Get("not-a-route")'; }
}

@WebSocketGateway(3001, { namespace: '/chat', transports: ['websocket'] })
export class ChatGateway {
  @SubscribeMessage('message:send')
  send() {}
}

async function bootstrap() {
  const app = await NestFactory.create(AppModule);
  app.setGlobalPrefix('api');
  app.enableVersioning({ type: VersioningType.URI, defaultVersion: '1' });
}
"#;
        let f = read(src).unwrap();
        let routes: Vec<String> = f
            .routes
            .iter()
            .map(|r| {
                format!(
                    "{} {}/{} v{:?} {}",
                    r.method, r.controller_path, r.path, r.version, r.line
                )
            })
            .collect();
        assert_eq!(
            routes,
            vec![
                "GET messages/ vSome(\"2\") 7",
                "POST messages/:id/reactions vSome(\"2\") 10",
                "GET messages/search vSome(\"3\") 15",
                "GET messages/find vSome(\"3\") 15",
            ]
        );
        assert_eq!(f.events.len(), 1);
        assert_eq!(
            (f.events[0].namespace.as_str(), f.events[0].event.as_str()),
            ("/chat", "message:send")
        );
        assert_eq!(f.transports[0].value, "['websocket']");
        assert_eq!(f.rate_limits.len(), 1);
        assert_eq!(f.rate_limits[0].key, "MessagesController.react");
        assert_eq!(f.global_prefix.as_ref().unwrap().value, "api");
        let (v, d) = f.versioning.as_ref().unwrap();
        assert_eq!(
            (v.value.as_str(), d.as_deref()),
            ("VersioningType.URI", Some("1"))
        );
    }

    #[test]
    fn absurd_nesting_is_refused_not_a_crash() {
        let deep = format!(
            "const a = {}1{};\n",
            "(".repeat(100_000),
            ")".repeat(100_000)
        );
        let e = read(&format!("@Controller('x')\nclass A {{}}\n{deep}")).unwrap_err();
        assert_eq!(e.line, Some(3));
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let e = read("@Controller('x')\nexport class A {\n  @Get(\n}\n").unwrap_err();
        assert!(e.line.is_some(), "{e:?}");
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_random_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = read(&text);
            let _ = read(&format!("@Controller('x')\nclass A {{\n @Get({text}) a() {{}}\n}}"));
        }
    }
}
