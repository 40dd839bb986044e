//! What the OpenAPI document's builders share (`crate::api` documents its aliases,
//! `crate::relay::route` its proxy paths, `crate::openapi` finishes the whole document).

use utoipa::openapi::path::{Operation, PathItem};

/// The operations of a path item, whatever their method.
pub fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    methods_mut(item).map(|(_, operation)| operation)
}

/// The operations of a path item with their (lowercase) method.
pub fn methods_mut(item: &mut PathItem) -> impl Iterator<Item = (&str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("options", &mut item.options),
        ("head", &mut item.head),
        ("patch", &mut item.patch),
        ("trace", &mut item.trace),
        ("query", &mut item.query),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.as_mut().map(|operation| (method, operation)))
    .chain(
        item.additional_operations
            .iter_mut()
            .map(|(method, operation)| (method.as_str(), operation)),
    )
}
