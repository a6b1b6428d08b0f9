//! Typed events into typed destinations: the s3 sink's Parquet columns
//! (SeaweedFS, read back with the parquet crate) and ClickHouse columns.

use super::*;

#[test]
fn avro_into_typed_parquet_columns() {
    use parquet::basic::{ConvertedType, Type as Physical};
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;
    let store = SeaweedFs::start();
    store.create_bucket("typed");
    let s = Setup::new(&["sr-parquet"]);
    // v1, then v2 (a new field): objects are cut where the schema changes.
    for (first, version) in [(0, 1), (100, 2)] {
        s.produce(Typed {
            first,
            version,
            ..Typed::new("sr-parquet", "avro", 100)
        });
    }
    let want = s.expected("sr-parquet", "avro", 200);
    let path = s.config(&["sr-parquet"], true);
    let sink = s3_sink(
        &store,
        "typed",
        r#", format = "parquet", value_columns = "schema""#,
        "schema_registry = true\nbatch = { max_events = 1000, max_wait_ms = 300 }",
    );
    with_components(&path, &(decode_table() + &sink));
    s.run(&path, "sr-parquet", &ends(want.keys()));

    let mut rows = 0;
    let mut schemas_seen = std::collections::BTreeSet::new();
    for (key, body) in store.objects("typed") {
        let reader = SerializedFileReader::new(bytes::Bytes::from(body)).expect("a Parquet object");
        let schema = reader.metadata().file_metadata().schema_descr_ptr();
        let column = |name: &str| {
            schema
                .columns()
                .iter()
                .find(|c| c.path().string() == name)
                .unwrap_or_else(|| panic!("{key}: no column `{name}`"))
                .clone()
        };
        // The column types come from the Avro schema.
        for (name, physical) in [
            ("id", Physical::INT64),
            ("score", Physical::DOUBLE),
            ("active", Physical::BOOLEAN),
            ("address.zip", Physical::INT32),
        ] {
            assert_eq!(column(name).physical_type(), physical, "{key}: {name}");
        }
        for (name, converted) in [
            ("name", ConvertedType::UTF8),
            ("day", ConvertedType::DATE),
            ("at", ConvertedType::TIMESTAMP_MILLIS),
            ("price", ConvertedType::DECIMAL),
        ] {
            assert_eq!(column(name).converted_type(), converted, "{key}: {name}");
        }
        let has_note = schema.columns().iter().any(|c| c.path().string() == "note");
        schemas_seen.insert(has_note);
        for row in reader.get_row_iter(None).expect("rows") {
            let row = row.expect("row");
            let get = |name: &str| {
                row.get_column_iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, f)| f.clone())
            };
            let (Some(Field::Int(p)), Some(Field::Long(o))) = (get("_partition"), get("_offset"))
            else {
                panic!("{key}: no _partition/_offset");
            };
            let v = &want[&("sr-parquet".to_owned(), p, o)];
            let text = |v: &Value| Some(Field::Str(v.as_str().expect("a string").into()));
            assert_eq!(get("id"), Some(Field::Long(int(&v["id"]))), "{key} {o}");
            assert_eq!(get("name"), text(&v["name"]), "{key} {o}");
            assert_eq!(
                get("address.city"),
                text(&v["address"]["city"]),
                "{key} {o}"
            );
            let nick = v["nickname"]
                .as_str()
                .map_or(Field::Null, |n| Field::Str(n.into()));
            assert_eq!(get("nickname"), Some(nick), "{key} {o}");
            assert_eq!(
                has_note,
                v.get("note").is_some(),
                "{key} {o}: one schema per object"
            );
            rows += 1;
        }
    }
    assert_eq!(rows, 200, "every event in one row");
    assert_eq!(schemas_seen.len(), 2, "objects of both schema versions");
}

#[test]
fn protobuf_into_clickhouse_columns() {
    let ch = ClickHouse::start();
    ch.query(
        "CREATE TABLE IF NOT EXISTS orders (topic String, partition Int32, offset Int64, \
         id Int64, status String, amount Float64, card String, placed_at String) \
         ENGINE = MergeTree ORDER BY (partition, offset)",
    );
    let s = Setup::new(&["sr-orders"]);
    s.produce(Typed::new("sr-orders", "protobuf", 120));
    let want = s.expected("sr-orders", "protobuf", 120);
    let path = s.config(&["sr-orders"], true);
    // The decoded value, as JSON, into the table's columns.
    let sink = clickhouse_sink(
        &ch,
        "orders",
        r#", value = "json", skip_unknown_fields = true, timestamp_column = "", key_column = """#,
        "",
    );
    with_components(&path, &(decode_table() + &sink));
    s.run(&path, "sr-orders", &ends(want.keys()));
    let rows = ch.query(
        "SELECT partition, offset, id, status, amount, card, placed_at FROM orders \
         ORDER BY partition, offset FORMAT JSONEachRow",
    );
    let rows: Vec<Value> = rows
        .lines()
        .map(|l| serde_json::from_str(l).expect("row"))
        .collect();
    assert_eq!(rows.len(), want.len(), "one row per event");
    for row in &rows {
        // ClickHouse's JSON output quotes 64-bit integers, as protobuf's does.
        let v = &want[&(
            "sr-orders".to_owned(),
            int(&row["partition"]) as i32,
            int(&row["offset"]),
        )];
        assert_eq!(row["id"].as_str(), v["id"].as_str(), "{row}");
        assert_eq!(row["status"], v["status"], "{row}");
        assert_eq!(row["amount"].as_f64(), v["amount"].as_f64(), "{row}");
        assert_eq!(
            row["card"].as_str(),
            Some(v["card"].as_str().unwrap_or("")),
            "{row}"
        );
        assert_eq!(row["placed_at"], v["placed_at"], "{row}");
    }
}
