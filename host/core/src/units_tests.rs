use super::*;

fn toml_value(text: &str) -> toml::Value {
    let t: toml::Table = toml::from_str(&format!("v = {text}")).unwrap();
    t["v"].clone()
}

#[test]
fn durations() {
    assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
    assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
    assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
    assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
    assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
    assert!(parse_duration("10").is_err());
    assert!(parse_duration("5 parsecs").is_err());
    assert_eq!(
        parse_duration_value(&toml::Value::Integer(3)).unwrap(),
        Duration::from_secs(3)
    );
}

#[test]
fn durations_past_a_year_are_errors_not_panics() {
    for s in [
        "99999999999999999999999h",
        "9999999999999h",
        "366d",
        "8761h",
    ] {
        let err = parse_duration(s).unwrap_err().to_string();
        assert!(err.contains("too long"), "{s}: {err}");
    }
    for v in [1e300, 1e30, f64::MAX, 31_622_400.0] {
        let err = parse_duration_value(&toml::Value::Float(v)).unwrap_err();
        assert!(err.to_string().contains("too long"), "{v}: {err}");
    }
    for v in [f64::INFINITY, f64::NAN, -1.0, f64::NEG_INFINITY] {
        assert!(parse_duration_value(&toml::Value::Float(v)).is_err(), "{v}");
    }
    assert!(parse_duration_value(&toml::Value::Integer(i64::MAX)).is_err());
    assert!(parse_duration_value(&toml::Value::Integer(-1)).is_err());
    assert_eq!(parse_duration("365d").unwrap(), MAX_DURATION);
    assert_eq!(
        parse_duration_value(&toml::Value::Float(0.25)).unwrap(),
        Duration::from_millis(250)
    );
}

#[test]
fn sizes_past_a_tebibyte_are_errors() {
    for s in ["1025GiB", "99999999999GiB", "99999999999999999999999"] {
        let err = parse_size_value(&toml::Value::from(s)).unwrap_err();
        assert!(
            err.to_string().contains("too large") || s.len() > 20,
            "{s}: {err}"
        );
    }
    assert!(parse_size_value(&toml::Value::Integer(i64::MAX)).is_err());
    assert!(parse_size_value(&toml::Value::Integer(-1)).is_err());
    assert_eq!(
        parse_size_value(&toml::Value::from("1024GiB")).unwrap(),
        MAX_SIZE
    );
}

#[test]
fn sizes() {
    assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
    assert_eq!(parse_size("10MB").unwrap(), 10_000_000);
    assert_eq!(parse_size_value(&toml::Value::Integer(7)).unwrap(), 7);
    assert!(parse_size("12 bananas").is_err());
}

#[test]
fn wrong_kinds_of_value_say_what_was_found() {
    let err = parse_duration_value(&toml_value("true")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "expected a duration such as \"10s\", found boolean"
    );
    let err = parse_size_value(&toml_value("[1, 2]")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "expected a size such as \"64MiB\", found array"
    );
    assert!(parse_size_value(&toml_value("1.5")).is_err());
}

#[test]
fn serde_types_read_every_spelling_and_name_the_bad_one() {
    #[derive(serde::Deserialize)]
    struct T {
        a: DurationValue,
        b: SizeValue,
        #[serde(deserialize_with = "de_duration")]
        c: Duration,
    }
    let t: T = toml::from_str("a = \"1m\"\nb = \"2KiB\"\nc = 0.5").unwrap();
    assert_eq!(t.a, DurationValue(Duration::from_secs(60)));
    assert_eq!(t.b, SizeValue(2048));
    assert_eq!(t.c, Duration::from_millis(500));
    let err = toml::from_str::<T>("a = \"366d\"\nb = 1\nc = 1")
        .err()
        .unwrap();
    assert!(err.to_string().contains("too long"), "{err}");
}
