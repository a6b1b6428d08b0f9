//! `schema_decode`: every format in every framing, read as Confluent's
//! deserializers read it; what cannot be decoded, dead-lettered.

use super::*;
use rdkafka::Message;
use std::collections::HashMap;

#[test]
fn avro_and_json_schema_in_every_framing_decode_as_confluent_reads_them() {
    let s = Setup::new(&["sr-avro", "sr-json", "sr-bad"]);
    // Avro: v1 with the id prefix, v1 with the GUID prefix, then v2 (a new
    // field with a default) with the GUID in a header: a schema evolving
    // mid-topic, in every framing.
    for (framing, first, version) in [("id", 0, 1), ("guid", 150, 1), ("header", 300, 2)] {
        s.produce(Typed {
            framing,
            first,
            version,
            ..Typed::new("sr-avro", "avro", 150)
        });
    }
    for (i, framing) in ["id", "guid", "header"].into_iter().enumerate() {
        s.produce(Typed {
            framing,
            first: i * 50,
            ..Typed::new("sr-json", "json", 50)
        });
    }
    let mut want = s.expected("sr-avro", "avro", 450);
    want.extend(s.expected("sr-json", "json", 150));
    assert_eq!(want.len(), 600);

    // Three events no deserializer can read: an id the registry does not
    // have, a good frame cut short, and a payload with no framing at all.
    let good = read_topic(
        &s.bootstrap,
        "sr-avro",
        PARTITIONS,
        1,
        Duration::from_secs(10),
    );
    let good = good[0].payload().expect("a value").to_vec();
    let unknown_id: Vec<u8> = [0u8, 0, 0, 0x27, 0x0f]
        .iter()
        .chain(&good[5..])
        .copied()
        .collect();
    let bad: Vec<(Vec<u8>, &str)> = vec![
        (unknown_id, "not in the registry"),
        (good[..good.len() / 2].to_vec(), "truncated"),
        (
            b"{\"plain\": \"json\"}".to_vec(),
            "not a Schema Registry magic byte",
        ),
    ];
    let records: Vec<Record> = bad
        .iter()
        .map(|(value, _)| Record {
            partition: 0,
            key: None,
            value: Some(value.clone()),
            headers: Vec::new(),
        })
        .collect();
    let bad_at = produce_records(&s.bootstrap, "sr-bad", &records);
    s.registry.clear_requests();

    let path = s.config(&["sr-avro", "sr-json", "sr-bad"], true);
    let mut flumen = s.start(&path, &[]);
    for topic in ["sr-avro", "sr-json"] {
        s.wait(
            &mut flumen,
            topic,
            &ends(want.keys().filter(|a| a.0 == topic)),
        );
    }
    s.wait(&mut flumen, "sr-bad", &end_offsets(bad_at.iter().copied()));
    let log = flumen.log_text();
    flumen.terminate();

    // Every event decoded, field by field as Confluent's deserializer reads it.
    let got = s.decoded();
    assert_same(&want, &got);
    let headers = got[&("sr-avro".to_owned(), 0, 0)].1.to_string();
    for header in [
        "flumen.value.schema_format",
        "flumen.value.schema_id",
        "sr-avro-value",
    ] {
        assert!(headers.contains(header), "headers: {headers}");
    }

    // Each undecodable event dead-lettered once, with its offset, its
    // cause and its original bytes.
    let letters = s.dead_letters(bad.len());
    assert_eq!(letters.len(), bad.len(), "dead letters");
    for ((value, cause), (_, offset)) in bad.iter().zip(&bad_at) {
        let letter = letters
            .iter()
            .find(|m| m.payload() == Some(&value[..]))
            .unwrap_or_else(|| panic!("no dead letter for the event at offset {offset} ({cause})"));
        let reason = header(letter, "flumen.error");
        assert!(
            reason.contains(&format!("offset {offset}")) && reason.contains(cause),
            "reason: {reason}"
        );
    }

    // The registry saw one request per schema, however many partitions and
    // events needed it (the unknown id excepted: "not found" is not kept
    // by the host, and each partition's instance asks once).
    let mut per_path: HashMap<String, usize> = HashMap::new();
    for r in s.registry.requests() {
        *per_path.entry(r).or_default() += 1;
    }
    let repeated: Vec<_> = per_path
        .iter()
        .filter(|(r, n)| **n > 1 && !r.ends_with(" 404"))
        .collect();
    assert!(
        repeated.is_empty(),
        "schemas fetched more than once: {repeated:?}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn protobuf_with_a_reference_decodes_as_confluent_reads_it() {
    let s = Setup::new(&["sr-proto"]);
    // order.proto imports address.proto (a reference of its own subject)
    // and the well-known Timestamp, in every framing.
    for (i, framing) in ["id", "guid", "header"].into_iter().enumerate() {
        s.produce(Typed {
            framing,
            first: i * 50,
            ..Typed::new("sr-proto", "protobuf", 50)
        });
    }
    let want = s.expected("sr-proto", "protobuf", 150);
    assert!(
        s.registry
            .requests()
            .iter()
            .any(|r| r.starts_with("POST /subjects/address.proto/versions")),
        "the reference was registered under its own subject"
    );
    s.run(
        &s.config(&["sr-proto"], true),
        "sr-proto",
        &ends(want.keys()),
    );
    assert_same(&want, &s.decoded());
    assert!(s.dead_letters(0).is_empty(), "nothing rejected");
}

#[test]
fn json_schema_payloads_are_validated_when_asked() {
    let s = Setup::new(&["sr-valid"]);
    s.produce(Typed::new("sr-valid", "json", 10));
    let good = read_topic(
        &s.bootstrap,
        "sr-valid",
        PARTITIONS,
        10,
        Duration::from_secs(10),
    );
    // The same framing and schema id, with a value its schema refuses.
    let mut bad = good[0].payload().expect("a value")[..5].to_vec();
    bad.extend_from_slice(br#"{"sensor": 5, "value": 1}"#);
    let record = Record {
        partition: 0,
        key: None,
        value: Some(bad.clone()),
        headers: Vec::new(),
    };
    let bad_at = produce_records(&s.bootstrap, "sr-valid", &[record]);
    let path = s.config(&["sr-valid"], true);
    with_components(
        &path,
        &(decode_table() + "config = { validate_json = true }\n" + &s.file_sink()),
    );
    let all = good
        .iter()
        .map(|m| (m.partition(), m.offset()))
        .chain(bad_at.iter().copied());
    s.run(&path, "sr-valid", &end_offsets(all));
    assert_eq!(s.decoded().len(), 10, "the valid events decoded");
    let letters = s.dead_letters(1);
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].payload(), Some(&bad[..]), "the original bytes");
    let reason = header(&letters[0], "flumen.error");
    assert!(
        reason.contains("`/sensor`") && reason.contains(&format!("offset {}", bad_at[0].1)),
        "{reason}"
    );
}
