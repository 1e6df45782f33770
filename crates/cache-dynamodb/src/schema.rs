//! Whether an existing table can hold this store's items: a table of the same name made by
//! hand or by another program (another key, an index of its own under the index's name)
//! would fail every write, or leave every entry unlisted by URL, with an error per call; the
//! store refuses it at open instead, saying why.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, GlobalSecondaryIndexDescription, KeySchemaElement, KeyType,
    ProjectionType, ScalarAttributeType, TableDescription,
};

use crate::items::{KEY, URL_GROUP};

/// Why `table` cannot hold this store's items, if it cannot: its key must be the string
/// attribute [`KEY`] alone, and its index `index_name`, when it has one (a table of an
/// earlier version has none: the store adds it), keyed by the string attribute
/// [`URL_GROUP`] alone and carrying every one of `index_attributes`.
pub(crate) fn mismatch(
    table: &TableDescription,
    index_name: &str,
    index_attributes: &[&str],
) -> Option<String> {
    let definitions = table.attribute_definitions();
    if !is_string_hash_key(table.key_schema(), definitions, KEY) {
        return Some(format!(
            "its key is {}, where this store needs the string attribute `{KEY}` alone",
            describe(table.key_schema())
        ));
    }
    let index = table
        .global_secondary_indexes()
        .iter()
        .find(|index| index.index_name() == Some(index_name))?;
    if !is_string_hash_key(index.key_schema(), definitions, URL_GROUP) {
        return Some(format!(
            "its index `{index_name}` is keyed by {}, where this store needs the string \
             attribute `{URL_GROUP}` alone",
            describe(index.key_schema())
        ));
    }
    let missing = missing_attributes(index, index_attributes);
    (!missing.is_empty()).then(|| {
        format!(
            "its index `{index_name}` does not carry {}, which this store reads from it \
             (delete the index and the store adds it again)",
            missing.join(", ")
        )
    })
}

fn is_string_hash_key(
    schema: &[KeySchemaElement],
    definitions: &[AttributeDefinition],
    name: &str,
) -> bool {
    let is_string = definitions.iter().any(|definition| {
        definition.attribute_name() == name
            && definition.attribute_type() == &ScalarAttributeType::S
    });
    matches!(schema, [only] if only.attribute_name() == name && only.key_type() == &KeyType::Hash)
        && is_string
}

/// The attributes of `wanted` the index does not carry (an index carries its own and the
/// table's keys, and what its projection names).
fn missing_attributes<'a>(
    index: &GlobalSecondaryIndexDescription,
    wanted: &[&'a str],
) -> Vec<&'a str> {
    // Not described (yet): nothing to hold against it.
    let Some(projection) = index.projection() else {
        return Vec::new();
    };
    match projection.projection_type() {
        Some(ProjectionType::All) => Vec::new(),
        Some(ProjectionType::Include) => wanted
            .iter()
            .copied()
            .filter(|name| !projection.non_key_attributes().iter().any(|n| n == name))
            .collect(),
        _ => wanted.to_vec(),
    }
}

fn describe(schema: &[KeySchemaElement]) -> String {
    let parts: Vec<String> = schema
        .iter()
        .map(|element| format!("`{}` ({})", element.attribute_name(), element.key_type()))
        .collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(" and ")
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::{Projection, ScalarAttributeType};

    use super::*;

    fn key(name: &str, kind: KeyType) -> KeySchemaElement {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    }

    fn string(name: &str) -> AttributeDefinition {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    }

    fn index(keyed_by: &str, projection: Projection) -> GlobalSecondaryIndexDescription {
        GlobalSecondaryIndexDescription::builder()
            .index_name("url_group")
            .key_schema(key(keyed_by, KeyType::Hash))
            .projection(projection)
            .build()
    }

    fn include(names: &[&str]) -> Projection {
        let mut projection = Projection::builder().projection_type(ProjectionType::Include);
        for name in names {
            projection = projection.non_key_attributes(*name);
        }
        projection.build()
    }

    /// The store's own table (with or without its index) is taken; a table keyed otherwise,
    /// by a number, with a sort key, or with an index of another key or carrying too little
    /// is not, and the reason names what differs.
    #[test]
    fn only_a_table_of_this_store_s_shape_is_taken() {
        let table = |keys: Vec<KeySchemaElement>,
                     index: Option<GlobalSecondaryIndexDescription>| {
            let mut table = TableDescription::builder()
                .attribute_definitions(string(KEY))
                .attribute_definitions(string(URL_GROUP))
                .attribute_definitions(string("id"))
                .set_key_schema(Some(keys));
            if let Some(index) = index {
                table = table.global_secondary_indexes(index);
            }
            table.build()
        };
        let ours = || vec![key(KEY, KeyType::Hash)];
        let wanted = ["t", "u"];
        let check = |table: &TableDescription| mismatch(table, "url_group", &wanted);
        assert_eq!(check(&table(ours(), None)), None);
        assert_eq!(
            check(&table(ours(), Some(index(URL_GROUP, include(&wanted))))),
            None
        );
        let all = Projection::builder()
            .projection_type(ProjectionType::All)
            .build();
        assert_eq!(check(&table(ours(), Some(index(URL_GROUP, all)))), None);

        let other_key = check(&table(vec![key("id", KeyType::Hash)], None)).unwrap();
        assert!(other_key.contains("`id`"), "{other_key}");
        let sorted = vec![key(KEY, KeyType::Hash), key("id", KeyType::Range)];
        assert!(check(&table(sorted, None)).is_some());
        let numbered = TableDescription::builder()
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(KEY)
                    .attribute_type(ScalarAttributeType::N)
                    .build()
                    .unwrap(),
            )
            .key_schema(key(KEY, KeyType::Hash))
            .build();
        assert!(check(&numbered).is_some());
        let other_index = check(&table(ours(), Some(index("id", include(&wanted))))).unwrap();
        assert!(other_index.contains("`id`"), "{other_index}");
        let keys_only = Projection::builder()
            .projection_type(ProjectionType::KeysOnly)
            .build();
        let thin = check(&table(ours(), Some(index(URL_GROUP, keys_only)))).unwrap();
        assert!(thin.contains("t, u"), "{thin}");
        let partial = check(&table(ours(), Some(index(URL_GROUP, include(&["t"]))))).unwrap();
        assert!(partial.contains("carry u, which"), "{partial}");
    }
}
