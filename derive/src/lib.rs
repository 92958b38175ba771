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
//! unsafe impl<T: ::arcycle::Trace> ::arcycle::Trace for Node<T> {
//!     #[inline(always)]
//!     fn may_have_edges() -> bool {
//!         <T as ::arcycle::Trace>::may_have_edges()
//!             || <Mutex<Option<Cc<Node<T>>>> as ::arcycle::Trace>::may_have_edges()
//!     }
//!     #[inline]
//!     fn trace<'__arcycle_a>(&'__arcycle_a self, __tracer: &mut ::arcycle::Tracer<'__arcycle_a>) {
//!         use ::arcycle::__private::{ProbeSkipped as _, ProbeTraced as _};
//!         ::arcycle::Trace::trace(&self.value, __tracer);
//!         (&&&::arcycle::__private::Hidden(&self.value)).__arcycle_probe_traced(__tracer);
//!         ::arcycle::Trace::trace(&self.next, __tracer);
//!         (&&&::arcycle::__private::Hidden(&self.next)).__arcycle_probe_traced(__tracer);
//!     }
//! }
//! ```
//!
//! The `__arcycle_probe_*` calls serve `arcycle::debug::collect_with_report`
//! only: a field of type `std::sync::Arc<U>` (with `U: Trace`), or a
//! `#[trace(skip)]` field of a `Trace` type, may hide edges from the
//! collector, and a leak report names the survivors it holds that way. For
//! every other field the probe resolves (by autoref specialisation) to an
//! empty inline function, and outside a leak report it is one branch.
//!
//! Every type parameter gets an extra `::arcycle::Trace` bound; lifetimes,
//! const generics and the original `where` clause are kept as they are. Enums
//! `match` on `self` and trace the fields of the active variant.
//!
//! # Attributes
//!
//! * `#[trace(skip)]` on a field leaves it out of both `trace` and
//!   `may_have_edges()` (only a leak report's probe looks at it).
//! * `#[trace(leaf)]` on the struct or enum makes `may_have_edges()` `false` and
//!   `trace` a no-op.
//!
//! Both only ever *under*-report edges. That is memory safe: a cycle the
//! collector cannot see is leaked, but live data is never freed.
//!
//! # Limitations
//!
//! `may_have_edges()` is computed from the field types, so a type that contains
//! itself *without* a `Cc` in between (for example `next: Option<Box<Self>>`)
//! makes the constant depend on itself and fails to compile with a
//! const-evaluation cycle error. Going through a `Cc` (or a `Weak`) is fine,
//! because those impls do not look into their pointee. For such a type,
//! implement `Trace` by hand and keep the default `may_have_edges() = true`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{
    parse_macro_input, parse_quote, Attribute, Data, DeriveInput, Error, Fields, Member, Result,
    Type,
};

/// Derives `arcycle::Trace` for a struct or enum; see the [crate docs](crate).
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
    /// The field's declared type, used in `may_have_edges()`.
    ty: Type,
    /// Marked `#[trace(skip)]`: not traced, only probed for hidden edges.
    skip: bool,
}

/// The statements for one field: trace it (unless skipped), and probe it
/// for edges hidden from the collector (see `arcycle::__private`: only a
/// leak report records them; for any other field type the probe is an
/// empty inline function).
fn field_stmts(field: &TracedField, place: TokenStream) -> TokenStream {
    if field.skip {
        quote! {
            (&&&::arcycle::__private::Hidden(#place)).__arcycle_probe_skipped(__tracer);
        }
    } else {
        quote! {
            ::arcycle::Trace::trace(#place, __tracer);
            (&&&::arcycle::__private::Hidden(#place)).__arcycle_probe_traced(__tracer);
        }
    }
}

/// Brings the probe traits into scope for `field_stmts`.
fn probe_imports() -> TokenStream {
    quote! {
        #[allow(unused_imports)]
        use ::arcycle::__private::{ProbeSkipped as _, ProbeTraced as _};
    }
}

/// Builds the whole `unsafe impl Trace` block, or the error to report.
fn expand(mut input: DeriveInput) -> Result<TokenStream> {
    let leaf = container_is_leaf(&input.attrs)?;
    let name = &input.ident;

    // Field types, for `may_have_edges()`, and the body of `trace`.
    let (types, body) = match &input.data {
        Data::Struct(data) => {
            let fields = traced_fields(&data.fields)?;
            let stmts = fields.iter().map(|f| {
                let member = &f.member;
                field_stmts(f, quote! { &self.#member })
            });
            let imports = probe_imports();
            let body = quote! { #imports #( #stmts )* };
            let types = fields.into_iter().filter(|f| !f.skip).map(|f| f.ty);
            (types.collect(), body)
        }
        Data::Enum(data) => {
            let mut types = Vec::new();
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
                    .map(|(f, b)| field_stmts(f, quote! { #b }));
                let ident = &variant.ident;
                arms.push(quote! {
                    Self::#ident { #( #members: #bindings, )* .. } => {
                        #( #stmts )*
                    }
                });
                types.extend(fields.into_iter().filter(|f| !f.skip).map(|f| f.ty));
            }
            // Only used when some variant has a traced field, so `arms` is
            // non-empty; an empty enum gets the empty body below.
            let imports = probe_imports();
            (types, quote! { #imports match self { #(#arms)* } })
        }
        Data::Union(data) => {
            return Err(Error::new_spanned(
                data.union_token,
                "#[derive(Trace)] does not support unions: the active field is unknown, \
                 so it cannot be traced; implement `arcycle::Trace` by hand",
            ));
        }
    };

    // With nothing to trace, `trace` is empty and its tracer argument unused.
    let (may_have_edges, body, tracer) = if leaf || types.is_empty() {
        (quote! { false }, TokenStream::new(), quote! { _ })
    } else {
        let edges = quote! { #( <#types as ::arcycle::Trace>::may_have_edges() )||* };
        (edges, body, quote! { __tracer })
    };

    for param in input.generics.type_params_mut() {
        param.bounds.push(parse_quote!(::arcycle::Trace));
    }
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();

    Ok(quote! {
        #[automatically_derived]
        unsafe impl #impl_generics ::arcycle::Trace for #name #ty_generics #where_clause {
            #[inline(always)]
            fn may_have_edges() -> bool {
                #may_have_edges
            }

            #[inline]
            fn trace<'__arcycle_a>(
                &'__arcycle_a self,
                #tracer: &mut ::arcycle::Tracer<'__arcycle_a>,
            ) {
                #body
            }
        }
    })
}

/// Parses the container attributes; returns whether `#[trace(leaf)]` is present.
fn container_is_leaf(attrs: &[Attribute]) -> Result<bool> {
    let mut leaf = false;
    for attr in attrs.iter().filter(|a| a.path().is_ident("trace")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("leaf") {
                leaf = true;
                Ok(())
            } else {
                Err(meta.error("unknown #[trace] container attribute; expected `leaf`"))
            }
        })?;
    }
    Ok(leaf)
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
