//! `#[derive(Trace)]` for the [`arcycle`](https://docs.rs/arcycle) cycle collector.
//!
//! Do not depend on this crate directly: depend on `arcycle`, which re-exports
//! the derive next to the trait, so `use arcycle::Trace;` brings both into scope.
//!
//! # What it generates
//!
//! For a struct or enum, the derive emits an `unsafe impl ::arcycle::Trace`
//! that visits every field and reports whether the type may hold a `Cc`:
//!
//! ```text
//! #[derive(Trace)]
//! struct Node<T> {
//!     value: T,
//!     next: Mutex<Option<Cc<Node<T>>>>,
//! }
//!
//! // expands to
//!
//! #[automatically_derived]
//! unsafe impl<T> ::arcycle::Trace for Node<T>
//! where
//!     T: ::arcycle::Trace,
//! {
//!     #[inline(always)]
//!     fn may_have_edges() -> bool {
//!         <T as ::arcycle::Trace>::may_have_edges()
//!             || <Mutex<Option<Cc<()>>> as ::arcycle::Trace>::may_have_edges()
//!     }
//!     #[inline]
//!     fn trace<'__arcycle_a>(&'__arcycle_a self, __tracer: &mut ::arcycle::Tracer<'__arcycle_a>) {
//!         use ::arcycle::__private::{ProbeSkipped as _, ProbeTraced as _};
//!         <T as ::arcycle::Trace>::trace(&self.value, __tracer);
//!         (&&&::arcycle::__private::Hidden(&self.value)).__arcycle_probe_traced(__tracer);
//!         <Mutex<Option<Cc<Node<T>>>> as ::arcycle::Trace>::trace(&self.next, __tracer);
//!         (&&&::arcycle::__private::Hidden(&self.next)).__arcycle_probe_traced(__tracer);
//!     }
//! }
//! ```
//!
//! Enums `match` on `self` and trace the fields of the active variant.
//!
//! The `__arcycle_probe_*` calls serve `arcycle::debug::collect_with_report`
//! only: a field of type `std::sync::Arc<U>` (with `U: Trace`), or a
//! `#[trace(skip)]` field of a `Trace` type, may hide edges from the
//! collector, and a leak report names the survivors it holds that way. For
//! every other field the probe resolves (by autoref specialisation) to an
//! empty inline function, and outside a leak report it is one branch. (In a
//! generic impl, a skipped field whose type is a bare parameter is not
//! known to be `Trace`, and is not probed.)
//!
//! # Bounds
//!
//! The bounds come from the field types, not from the type parameters: each
//! traced field type that mentions a type or lifetime parameter is bounded
//! by `Trace` (`Vec<T>: Trace`, `PhantomData<T>: Trace` — which holds for
//! every `T` —, `&'a str: Trace`, which holds for `'a = 'static`). Field
//! types without a parameter are checked as they are, skipped fields add
//! nothing, and the type's own bounds and `where` clause are kept.
//!
//! A field type that mentions the type being derived (by its name, or as
//! `Self`) would make such a bound ask for the impl being defined, and the
//! trait solver overflow; for those the derive bounds the parts that do not
//! mention it instead: `Mutex<Vec<Cc<Node<T>>>>` needs nothing (the impl
//! itself provides `Node<T>: Trace`), `Vec<(Self, Cc<X<T>>)>` needs
//! `Cc<X<T>>: Trace`. So a self-referential generic type needs no `Trace`
//! bound on the type itself:
//!
//! ```
//! use arcycle::Trace;
//! use std::marker::PhantomData;
//!
//! #[derive(Trace)]
//! struct Tagged<T> {
//!     _marker: PhantomData<T>,
//!     x: u32,
//! }
//!
//! #[derive(Trace)]
//! struct List<T> {
//!     value: T,
//!     next: Option<Box<List<T>>>,
//! }
//!
//! struct NotTrace;
//! fn is_trace<T: Trace>() {}
//! is_trace::<Tagged<NotTrace>>();
//! assert!(!<List<u32> as Trace>::may_have_edges());
//! assert!(<List<arcycle::Cc<u8>> as Trace>::may_have_edges());
//! ```
//!
//! Where the inferred bounds are wrong, `#[trace(bound = "...")]` replaces
//! them (see below).
//!
//! # `may_have_edges()` and types that contain themselves
//!
//! `may_have_edges()` is the OR of the traced field types' answers, with the
//! type being derived (and `Self`) replaced by `()` inside them. For a type
//! that contains itself without a `Cc` in between (`next: Option<Box<Self>>`)
//! that is the right answer — it holds a `Cc` only if one of its other fields
//! can — where asking the field type as written would call the function
//! being defined, without end. A `Cc` (or `Weak`) in between was never a
//! problem: those answer without looking at their pointee. A field that
//! names the type where `()` cannot stand in for it (inside a qualified path
//! such as `<Self as Tr>::Out`, or a macro) answers `true`, which is always
//! allowed.
//!
//! The replacement cannot see *mutual* recursion: `A` holding
//! `Option<Box<B>>` while `B` holds `Option<Box<A>>` makes `A`'s answer ask
//! `B`'s, which asks `A`'s again. In debug builds the derived function of a
//! type that names another type outside a `Cc` counts its nesting and
//! panics with a message naming the type (at the first `Cc::new` of it);
//! in release builds this would recurse until the stack overflows (or loop
//! forever). Mark one of the types `#[trace(assume_edges)]` (its answer is
//! then `true` without asking its fields), or `#[trace(leaf)]` if neither
//! can hold a `Cc`:
//!
//! ```
//! use arcycle::Trace;
//!
//! #[derive(Trace)]
//! #[trace(assume_edges)]
//! struct A {
//!     b: Option<Box<B>>,
//! }
//!
//! #[derive(Trace)]
//! struct B {
//!     a: Option<Box<A>>,
//! }
//!
//! assert!(<A as Trace>::may_have_edges());
//! assert!(<B as Trace>::may_have_edges());
//! ```
//!
//! # Attributes
//!
//! * `#[trace(skip)]` on a field leaves it out of `trace`, `may_have_edges()`
//!   and the bounds (only a leak report's probe looks at it).
//! * `#[trace(leaf)]` on the struct or enum makes `may_have_edges()` `false`,
//!   `trace` a no-op, and infers no bounds.
//! * `#[trace(assume_edges)]` on the struct or enum makes `may_have_edges()`
//!   `true` without asking the fields (their `Cc`s are still traced).
//! * `#[trace(bound = "T: Trace, U: Clone")]` on the struct or enum replaces
//!   the inferred bounds by these `where` predicates (`bound = ""` for none).
//! * `#[trace(crate = path)]` (or `crate = "path"`) on the struct or enum
//!   names the `arcycle` crate when it is not `::arcycle` (a renamed
//!   dependency, or a re-export from a crate of your own); every path the
//!   expansion emits starts with it.
//!
//! ```
//! extern crate arcycle as gc;
//!
//! #[derive(gc::Trace)]
//! #[trace(crate = gc, bound = "T: gc::Trace")]
//! struct Wrapper<T> {
//!     inner: Option<T>,
//! }
//!
//! assert!(<Wrapper<gc::Cc<u8>> as gc::Trace>::may_have_edges());
//! ```
//!
//! `skip`, `leaf` and `assume_edges` only ever *under*-report edges (or
//! claim edges that may not be there, which costs time, not safety). That is
//! memory safe: a cycle the collector cannot see is leaked, but live data is
//! never freed.
//!
//! # Errors
//!
//! A field whose type does not implement `Trace` is reported at the field,
//! with what to do about it:
//!
//! ```compile_fail,E0277
//! use arcycle::Trace;
//!
//! struct Foreign;
//!
//! #[derive(Trace)]
//! struct Holder {
//!     f: Foreign, // error: `Foreign` does not implement `arcycle::Trace`
//! }
//! ```
//!
//! Unions are rejected: the active field is unknown, so it cannot be traced.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    parse_macro_input, parse_quote, Attribute, Data, DeriveInput, Error, Fields, GenericArgument,
    Generics, Ident, LitStr, Member, Path, PathArguments, Result, ReturnType, Token, Type,
    TypeParamBound, WherePredicate,
};

/// Derives `arcycle::Trace` for a struct or enum; see the [crate docs](crate).
///
/// ```
/// use arcycle::{Cc, Trace};
/// use std::sync::Mutex;
///
/// #[derive(Trace)]
/// struct Node {
///     name: String,
///     next: Mutex<Option<Cc<Node>>>,
/// }
///
/// let a = Cc::new(Node { name: "a".into(), next: Mutex::new(None) });
/// *a.next.lock().unwrap() = Some(a.clone()); // a self-loop
/// drop(a);
/// assert!(arcycle::collect() >= 1);
/// ```
#[proc_macro_derive(Trace, attributes(trace))]
pub fn derive_trace(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(input)
        .unwrap_or_else(Error::into_compile_error)
        .into()
}

/// A field of the type.
struct TracedField {
    /// How the field is named: `self.<member>` or `Self::V { <member>: .. }`.
    member: Member,
    /// The field's declared type.
    ty: Type,
    /// Marked `#[trace(skip)]`: not traced, only probed for hidden edges.
    skip: bool,
}

/// The container attributes.
struct Options {
    /// `#[trace(crate = path)]`: where the `arcycle` crate is (`::arcycle`).
    krate: Path,
    /// `#[trace(leaf)]`.
    leaf: bool,
    /// `#[trace(assume_edges)]`.
    assume_edges: bool,
    /// `#[trace(bound = "...")]`: replaces the inferred where predicates.
    bound: Option<Vec<WherePredicate>>,
}

/// What the derive knows about the type it derives for.
struct Subject<'a> {
    /// The type's name: a single-segment path `Name<..>` (or `self::Name`)
    /// in a field type is the type itself, as is `Self`.
    name: &'a Ident,
    /// The names of its type and lifetime parameters.
    params: Vec<String>,
}

/// The statements for one field: trace it (unless skipped), and probe it
/// for edges hidden from the collector (see `arcycle::__private`: only a
/// leak report records them; for any other field type the probe is an
/// empty inline function). Spanned at the field's type, so that a field
/// type without `Trace` is reported there.
fn field_stmts(field: &TracedField, place: TokenStream, krate: &Path) -> TokenStream {
    let ty = &field.ty;
    let span = ty.span();
    if field.skip {
        quote_spanned! {span=>
            (&&&#krate::__private::Hidden(#place)).__arcycle_probe_skipped(__tracer);
        }
    } else {
        quote_spanned! {span=>
            <#ty as #krate::Trace>::trace(#place, __tracer);
            (&&&#krate::__private::Hidden(#place)).__arcycle_probe_traced(__tracer);
        }
    }
}

/// Brings the probe traits into scope for `field_stmts`.
fn probe_imports(krate: &Path) -> TokenStream {
    quote! {
        #[allow(unused_imports)]
        use #krate::__private::{ProbeSkipped as _, ProbeTraced as _};
    }
}

/// Builds the whole `unsafe impl Trace` block, or the error to report.
fn expand(mut input: DeriveInput) -> Result<TokenStream> {
    let options = container_options(&input.attrs)?;
    let krate = &options.krate;
    let name = &input.ident;

    // Every field (skipped ones included), and the body of `trace`.
    let (fields, body) = match &input.data {
        Data::Struct(data) => {
            let fields = traced_fields(&data.fields)?;
            let stmts = fields.iter().map(|f| {
                let member = &f.member;
                field_stmts(f, quote! { &self.#member }, krate)
            });
            let imports = probe_imports(krate);
            let body = quote! { #imports #( #stmts )* };
            (fields, body)
        }
        Data::Enum(data) => {
            let mut all = Vec::new();
            let mut arms = Vec::new();
            for variant in &data.variants {
                reject_trace_attrs(&variant.attrs, "variants")?;
                let fields = traced_fields(&variant.fields)?;
                let members = fields.iter().map(|f| &f.member);
                let bindings: Vec<_> = (0..fields.len())
                    .map(|i| format_ident!("__arcycle_f{}", i))
                    .collect();
                let stmts = fields
                    .iter()
                    .zip(&bindings)
                    .map(|(f, b)| field_stmts(f, quote! { #b }, krate));
                let ident = &variant.ident;
                arms.push(quote! {
                    Self::#ident { #( #members: #bindings, )* .. } => {
                        #( #stmts )*
                    }
                });
                all.extend(fields);
            }
            // Only used when some variant has a traced field, so `arms` is
            // non-empty; an empty enum gets the empty body below.
            let imports = probe_imports(krate);
            (all, quote! { #imports match self { #(#arms)* } })
        }
        Data::Union(data) => {
            return Err(Error::new_spanned(
                data.union_token,
                "#[derive(Trace)] does not support unions: the active field is unknown, \
                 so it cannot be traced; implement `arcycle::Trace` by hand",
            ));
        }
    };
    let subject = Subject {
        name,
        params: generic_names(&input.generics),
    };
    let traced: Vec<&Type> = fields.iter().filter(|f| !f.skip).map(|f| &f.ty).collect();

    // With nothing to trace, `trace` is empty and its tracer argument unused.
    let (may_have_edges, body, tracer) = if options.leaf || traced.is_empty() {
        (quote! { false }, TokenStream::new(), quote! { _ })
    } else if options.assume_edges {
        (quote! { true }, body, quote! { __tracer })
    } else {
        (
            may_have_edges_body(&traced, &subject, krate),
            body,
            quote! { __tracer },
        )
    };

    // The bounds: the user's, or one per traced field type that mentions a
    // generic parameter (none for a leaf: its `trace` looks at nothing).
    let predicates: Vec<WherePredicate> = match options.bound {
        Some(bound) => bound,
        None if options.leaf => Vec::new(),
        None => {
            let mut bounds = Vec::new();
            for ty in &traced {
                field_bounds(ty, &subject, &mut bounds);
            }
            let mut seen = std::collections::HashSet::new();
            bounds.retain(|ty| seen.insert(ty.to_token_stream().to_string()));
            bounds
                .iter()
                .map(|ty| {
                    let span = ty.span();
                    parse_quote_spanned_predicate(span, ty, krate)
                })
                .collect()
        }
    };
    input
        .generics
        .make_where_clause()
        .predicates
        .extend(predicates);
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();

    Ok(quote! {
        #[automatically_derived]
        unsafe impl #impl_generics #krate::Trace for #name #ty_generics #where_clause {
            #[inline(always)]
            fn may_have_edges() -> bool {
                #may_have_edges
            }

            #[inline]
            fn trace<'__arcycle_a>(
                &'__arcycle_a self,
                #tracer: &mut #krate::Tracer<'__arcycle_a>,
            ) {
                #body
            }
        }
    })
}

/// `ty: krate::Trace`, spanned at the field type.
fn parse_quote_spanned_predicate(span: Span, ty: &Type, krate: &Path) -> WherePredicate {
    let tokens = quote_spanned! {span=> #ty: #krate::Trace };
    syn::parse2(tokens).expect("a type and a trait path form a where predicate")
}

/// The body of `may_have_edges()`: the OR of the traced field types'
/// answers, each with the type itself (and `Self`) replaced by `()` — the
/// least fixpoint for a type that contains itself without a `Cc` between
/// (`Option<Box<Self>>` asks `Option<Box<()>>`, not itself again). A field
/// that names the type where `()` cannot stand in (inside a qualified path
/// or a macro) answers `true`, which is always allowed.
///
/// In debug builds, a type that names another type outside a `Cc` (which
/// may name it back: mutual recursion, which the substitution cannot see)
/// counts its nesting on this thread and panics with an explanation
/// instead of recursing until the stack overflows.
fn may_have_edges_body(traced: &[&Type], subject: &Subject, krate: &Path) -> TokenStream {
    let mut guard = false;
    let answers: Vec<TokenStream> = traced
        .iter()
        .map(|ty| {
            let mut ty = (*ty).clone();
            match substitute_self(&mut ty, subject) {
                SelfUse::Opaque => quote! { true },
                _ => {
                    guard |= may_recurse(&ty, subject);
                    let span = ty.span();
                    quote_spanned! {span=> <#ty as #krate::Trace>::may_have_edges() }
                }
            }
        })
        .collect();
    let answer = quote! { #( #answers )||* };
    if !guard {
        return answer;
    }
    quote! {
        #[cfg(debug_assertions)]
        let __arcycle_guard = {
            ::std::thread_local! {
                static __ARCYCLE_DEPTH: ::std::cell::Cell<u32> =
                    const { ::std::cell::Cell::new(0) };
            }
            struct __ArcycleGuard;
            impl ::std::ops::Drop for __ArcycleGuard {
                fn drop(&mut self) {
                    __ARCYCLE_DEPTH.with(|d| d.set(d.get() - 1));
                }
            }
            let depth = __ARCYCLE_DEPTH.with(|d| {
                d.set(d.get() + 1);
                d.get()
            });
            let guard = __ArcycleGuard;
            if depth > 100 {
                ::std::panic!(
                    "`<{} as arcycle::Trace>::may_have_edges()` calls itself without end: \
                     its field types contain it again through another type, without a `Cc` \
                     in between (mutual recursion, such as `A` holding `Box<B>` and `B` \
                     holding `Box<A>`); mark one of the types `#[trace(assume_edges)]` \
                     (or `#[trace(leaf)]` if none of them can hold a `Cc`)",
                    ::std::any::type_name::<Self>(),
                );
            }
            guard
        };
        #answer
    }
}

/// How a field type refers to the type being derived.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SelfUse {
    /// Not at all.
    No,
    /// In places `substitute_self` replaced by `()`.
    Replaced,
    /// Where `()` cannot stand in for it (a qualified path, a macro).
    Opaque,
}

impl SelfUse {
    fn join(self, other: SelfUse) -> SelfUse {
        match (self, other) {
            (SelfUse::Opaque, _) | (_, SelfUse::Opaque) => SelfUse::Opaque,
            (SelfUse::Replaced, _) | (_, SelfUse::Replaced) => SelfUse::Replaced,
            _ => SelfUse::No,
        }
    }
}

/// Whether `path` names the type being derived: `Self`, `Name<..>` or
/// `self::Name<..>`. (A longer path such as `other::Name` is taken to be
/// another type.)
fn is_self_path(path: &Path, subject: &Subject) -> bool {
    let segments: Vec<_> = path.segments.iter().collect();
    if path.leading_colon.is_some() {
        return false;
    }
    match segments.as_slice() {
        [only] => only.ident == "Self" || only.ident == *subject.name,
        [first, last] => first.ident == "self" && last.ident == *subject.name,
        _ => false,
    }
}

/// Whether `tokens` mention `Self` or the type's name anywhere.
fn tokens_mention_self(tokens: TokenStream, subject: &Subject) -> bool {
    tokens.into_iter().any(|tt| match tt {
        TokenTree::Ident(ident) => ident == "Self" || ident == *subject.name,
        TokenTree::Group(group) => tokens_mention_self(group.stream(), subject),
        _ => false,
    })
}

/// Whether `tokens` mention one of the type's generic parameters.
fn tokens_mention_param(tokens: TokenStream, subject: &Subject) -> bool {
    let mut lifetime = false;
    for tt in tokens {
        match tt {
            TokenTree::Punct(p) if p.as_char() == '\'' => {
                lifetime = true;
                continue;
            }
            TokenTree::Ident(ident) => {
                let name = if lifetime {
                    format!("'{ident}")
                } else {
                    ident.to_string()
                };
                if subject.params.contains(&name) {
                    return true;
                }
            }
            TokenTree::Group(group) if tokens_mention_param(group.stream(), subject) => {
                return true;
            }
            _ => {}
        }
        lifetime = false;
    }
    false
}

/// Replaces every mention of the type being derived in `ty` by `()`.
fn substitute_self(ty: &mut Type, subject: &Subject) -> SelfUse {
    match ty {
        Type::Array(t) => substitute_self(&mut t.elem, subject),
        Type::Group(t) => substitute_self(&mut t.elem, subject),
        Type::Paren(t) => substitute_self(&mut t.elem, subject),
        Type::Ptr(t) => substitute_self(&mut t.elem, subject),
        Type::Reference(t) => substitute_self(&mut t.elem, subject),
        Type::Slice(t) => substitute_self(&mut t.elem, subject),
        Type::Tuple(t) => t
            .elems
            .iter_mut()
            .fold(SelfUse::No, |u, e| u.join(substitute_self(e, subject))),
        Type::Path(t) => {
            if t.qself.is_some() {
                return opaque_if_mentioned(ty, subject);
            }
            if is_self_path(&t.path, subject) {
                *ty = parse_quote!(());
                return SelfUse::Replaced;
            }
            if t.path.segments.first().is_some_and(|s| s.ident == "Self") {
                return SelfUse::Opaque; // `Self::Assoc`
            }
            let mut used = SelfUse::No;
            for segment in &mut t.path.segments {
                used = used.join(substitute_in_arguments(&mut segment.arguments, subject));
            }
            used
        }
        Type::BareFn(t) => {
            let mut used = SelfUse::No;
            for arg in &mut t.inputs {
                used = used.join(substitute_self(&mut arg.ty, subject));
            }
            if let ReturnType::Type(_, out) = &mut t.output {
                used = used.join(substitute_self(out, subject));
            }
            used
        }
        Type::TraitObject(t) => substitute_in_bounds(&mut t.bounds, subject),
        Type::ImplTrait(t) => substitute_in_bounds(&mut t.bounds, subject),
        _ => opaque_if_mentioned(ty, subject),
    }
}

/// `Opaque` if `ty` mentions the type being derived, else `No`.
fn opaque_if_mentioned(ty: &Type, subject: &Subject) -> SelfUse {
    if tokens_mention_self(ty.to_token_stream(), subject) {
        SelfUse::Opaque
    } else {
        SelfUse::No
    }
}

fn substitute_in_arguments(arguments: &mut PathArguments, subject: &Subject) -> SelfUse {
    match arguments {
        PathArguments::None => SelfUse::No,
        PathArguments::AngleBracketed(args) => {
            let mut used = SelfUse::No;
            for arg in &mut args.args {
                used = used.join(match arg {
                    GenericArgument::Type(t) => substitute_self(t, subject),
                    GenericArgument::AssocType(a) => substitute_self(&mut a.ty, subject),
                    GenericArgument::Lifetime(_) => SelfUse::No,
                    other => {
                        if tokens_mention_self(other.to_token_stream(), subject) {
                            SelfUse::Opaque
                        } else {
                            SelfUse::No
                        }
                    }
                });
            }
            used
        }
        PathArguments::Parenthesized(args) => {
            let mut used = SelfUse::No;
            for input in &mut args.inputs {
                used = used.join(substitute_self(input, subject));
            }
            if let ReturnType::Type(_, out) = &mut args.output {
                used = used.join(substitute_self(out, subject));
            }
            used
        }
    }
}

fn substitute_in_bounds(
    bounds: &mut Punctuated<TypeParamBound, Token![+]>,
    subject: &Subject,
) -> SelfUse {
    let mut used = SelfUse::No;
    for bound in bounds {
        if let TypeParamBound::Trait(t) = bound {
            for segment in &mut t.path.segments {
                used = used.join(substitute_in_arguments(&mut segment.arguments, subject));
            }
        }
    }
    used
}

/// The types to bound by `Trace` for a traced field of type `ty`: none if it
/// mentions no generic parameter (the impl checks it as it is); itself if
/// it does not mention the type being derived; otherwise, recursively, the
/// parts of it that do not, so that no bound asks for the type's own impl
/// (which would make the trait solver go round in circles: `Self: Trace`
/// needs the bound, which needs `Self: Trace`). For
/// `Mutex<Vec<(Cc<Self>, T)>>` that is `T` alone; `Cc<Self>` needs nothing
/// but the impl being defined.
fn field_bounds(ty: &Type, subject: &Subject, out: &mut Vec<Type>) {
    if !tokens_mention_param(ty.to_token_stream(), subject) {
        return;
    }
    if substitute_self(&mut ty.clone(), subject) == SelfUse::No {
        out.push(ty.clone());
        return;
    }
    match ty {
        Type::Array(t) => field_bounds(&t.elem, subject, out),
        Type::Group(t) => field_bounds(&t.elem, subject, out),
        Type::Paren(t) => field_bounds(&t.elem, subject, out),
        Type::Slice(t) => field_bounds(&t.elem, subject, out),
        Type::Tuple(t) => t.elems.iter().for_each(|e| field_bounds(e, subject, out)),
        Type::Path(t) if t.qself.is_none() && !is_self_path(&t.path, subject) => {
            for segment in &t.path.segments {
                if let PathArguments::AngleBracketed(args) = &segment.arguments {
                    for arg in &args.args {
                        match arg {
                            GenericArgument::Type(t) => field_bounds(t, subject, out),
                            GenericArgument::AssocType(a) => field_bounds(&a.ty, subject, out),
                            _ => {}
                        }
                    }
                }
            }
        }
        // The type itself, a reference or pointer to it, a function
        // pointer or trait object naming it: nothing to bound (`&'static T`
        // and `fn` pointers are leaves for every `T`).
        _ => {}
    }
}

/// Whether the answer for `ty` (with the type itself already replaced by
/// `()`) may go through another type that is not a known standard one
/// outside a `Cc`, `Weak`, `Arc` or `PhantomData` — the only way
/// `may_have_edges()` can come back to the type being derived.
fn may_recurse(ty: &Type, subject: &Subject) -> bool {
    /// Answer without looking at their type arguments.
    const STOPS: &[&str] = &["Cc", "Weak", "Arc", "PhantomData", "AtomicPtr"];
    /// Standard types whose answer depends on their type arguments only.
    const KNOWN: &[&str] = &[
        "bool",
        "char",
        "u8",
        "u16",
        "u32",
        "u64",
        "u128",
        "usize",
        "i8",
        "i16",
        "i32",
        "i64",
        "i128",
        "isize",
        "f32",
        "f64",
        "str",
        "String",
        "Option",
        "Result",
        "Box",
        "Vec",
        "VecDeque",
        "LinkedList",
        "BinaryHeap",
        "BTreeMap",
        "BTreeSet",
        "HashMap",
        "HashSet",
        "Mutex",
        "RwLock",
        "OnceLock",
        "LazyLock",
        "Cow",
        "Pin",
        "ManuallyDrop",
        "Wrapping",
        "Reverse",
        "AssertUnwindSafe",
        "Duration",
        "Instant",
        "SystemTime",
        "PathBuf",
        "Path",
        "OsString",
        "OsStr",
        "CString",
        "CStr",
        "NonZero",
        "Condvar",
        "Barrier",
        "Sender",
        "SyncSender",
        "Receiver",
        "RandomState",
    ];
    match ty {
        Type::Array(t) => may_recurse(&t.elem, subject),
        Type::Group(t) => may_recurse(&t.elem, subject),
        Type::Paren(t) => may_recurse(&t.elem, subject),
        Type::Slice(t) => may_recurse(&t.elem, subject),
        Type::Tuple(t) => t.elems.iter().any(|e| may_recurse(e, subject)),
        Type::Reference(_) | Type::Ptr(_) | Type::BareFn(_) | Type::Never(_) => false,
        Type::Path(t) if t.qself.is_none() => {
            let Some(last) = t.path.segments.last() else {
                return true;
            };
            let name = last.ident.to_string();
            if t.path.segments.len() == 1 && subject.params.contains(&name) {
                return false;
            }
            if STOPS.contains(&name.as_str()) {
                return false;
            }
            let known = KNOWN.contains(&name.as_str())
                || name.starts_with("NonZero")
                || name.starts_with("Atomic");
            if !known {
                return true;
            }
            match &last.arguments {
                PathArguments::AngleBracketed(args) => args.args.iter().any(|arg| match arg {
                    GenericArgument::Type(t) => may_recurse(t, subject),
                    _ => false,
                }),
                _ => false,
            }
        }
        _ => true,
    }
}

/// The names of the type and lifetime parameters (`T`, `'a`).
fn generic_names(generics: &Generics) -> Vec<String> {
    let types = generics.type_params().map(|p| p.ident.to_string());
    let lifetimes = generics.lifetimes().map(|l| l.lifetime.to_string());
    types.chain(lifetimes).collect()
}

/// Parses the container attributes.
fn container_options(attrs: &[Attribute]) -> Result<Options> {
    let mut options = Options {
        krate: parse_quote!(::arcycle),
        leaf: false,
        assume_edges: false,
        bound: None,
    };
    for attr in attrs.iter().filter(|a| a.path().is_ident("trace")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("leaf") {
                options.leaf = true;
            } else if meta.path.is_ident("assume_edges") {
                options.assume_edges = true;
            } else if meta.path.is_ident("crate") {
                let value = meta.value()?;
                options.krate = if value.peek(LitStr) {
                    let lit: LitStr = value.parse()?;
                    lit.parse_with(Path::parse_mod_style)?
                } else {
                    Path::parse_mod_style(value)?
                };
            } else if meta.path.is_ident("bound") {
                let lit: LitStr = meta.value()?.parse()?;
                let parser = Punctuated::<WherePredicate, Token![,]>::parse_terminated;
                let predicates = parser.parse_str(&lit.value()).map_err(|e| {
                    Error::new(lit.span(), format!("invalid where predicates: {e}"))
                })?;
                options.bound = Some(predicates.into_iter().collect());
            } else {
                return Err(meta.error(
                    "unknown #[trace] container attribute; expected `leaf`, `assume_edges`, \
                     `crate = path` or `bound = \"...\"`",
                ));
            }
            Ok(())
        })?;
    }
    if options.leaf && options.assume_edges {
        return Err(Error::new(
            Span::call_site(),
            "#[trace(leaf)] and #[trace(assume_edges)] contradict each other",
        ));
    }
    Ok(options)
}

/// Returns every field, in declaration order, marking those with
/// `#[trace(skip)]`.
fn traced_fields(fields: &Fields) -> Result<Vec<TracedField>> {
    let mut traced = Vec::new();
    for (index, field) in fields.iter().enumerate() {
        let mut skip = false;
        for attr in field.attrs.iter().filter(|a| a.path().is_ident("trace")) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("skip") {
                    skip = true;
                    Ok(())
                } else {
                    Err(meta.error("unknown #[trace] field attribute; expected `skip`"))
                }
            })?;
        }
        let member = match &field.ident {
            Some(ident) => Member::Named(ident.clone()),
            None => Member::from(index),
        };
        traced.push(TracedField {
            member,
            ty: field.ty.clone(),
            skip,
        });
    }
    Ok(traced)
}

/// Errors on any `#[trace(...)]` attribute in a position that takes none.
fn reject_trace_attrs(attrs: &[Attribute], position: &str) -> Result<()> {
    match attrs.iter().find(|a| a.path().is_ident("trace")) {
        Some(attr) => Err(Error::new_spanned(
            attr,
            format!("#[trace] attributes are not supported on {position}"),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expanded(input: TokenStream) -> String {
        expand(syn::parse2(input).unwrap()).unwrap().to_string()
    }

    /// The text of the impl's `where` clause (between `where` and `{`).
    fn where_clause(out: &str) -> &str {
        let start = out.find("where").map_or(0, |i| i + "where".len());
        &out[start..out[start..].find('{').map_or(out.len(), |i| start + i)]
    }

    #[test]
    fn crate_path_is_used_everywhere() {
        for attr in [
            quote!(#[trace(crate = my::path)]),
            quote!(#[trace(crate = "my::path")]),
        ] {
            let out = expanded(quote! {
                #attr
                struct S<T> { a: Vec<T>, #[trace(skip)] b: u8 }
            });
            assert!(!out.contains("arcycle ::"), "{out}");
            assert!(out.contains("my :: path :: Trace"), "{out}");
            assert!(out.contains("my :: path :: Tracer"), "{out}");
            assert!(out.contains("my :: path :: __private"), "{out}");
        }
    }

    #[test]
    fn bounds_from_field_types() {
        let out = expanded(quote! {
            struct Tagged<T> { _m: PhantomData<T>, x: u32 }
        });
        assert_eq!(
            where_clause(&out).trim(),
            "PhantomData < T > : :: arcycle :: Trace"
        );
        let out = expanded(quote! {
            struct Generic<T: Send + Sync + 'static> { inner: Mutex<Vec<Cc<Generic<T>>>>, val: T }
        });
        assert_eq!(where_clause(&out).trim(), "T : :: arcycle :: Trace");
        let out = expanded(quote! {
            struct Tree<T> where T: Clone { kids: Vec<(Self, Cc<X<T>>)> }
        });
        assert_eq!(
            where_clause(&out).trim(),
            "T : Clone , Cc < X < T > > : :: arcycle :: Trace"
        );
        let out = expanded(quote! {
            #[trace(bound = "T: Foo")]
            struct B<T> { t: T }
        });
        assert_eq!(where_clause(&out).trim(), "T : Foo");
    }

    #[test]
    fn may_have_edges_replaces_the_type_itself() {
        let out = expanded(quote! {
            struct List { v: u32, next: Option<Box<List>>, other: Option<Box<Self>> }
        });
        assert!(
            out.contains("< Option < Box < () > > as :: arcycle :: Trace > :: may_have_edges ()"),
            "{out}"
        );
        assert!(!out.contains("Box < List >  as"), "{out}");
        // No other type named outside a `Cc`: no recursion guard.
        assert!(!out.contains("__ARCYCLE_DEPTH"), "{out}");
        let out = expanded(quote! {
            struct A { b: Option<Box<B>> }
        });
        assert!(out.contains("__ARCYCLE_DEPTH"), "{out}");
        let out = expanded(quote! {
            struct Q { q: <Self as Tr>::Out }
        });
        assert!(
            out.contains("fn may_have_edges () -> bool { true }"),
            "{out}"
        );
    }
}
