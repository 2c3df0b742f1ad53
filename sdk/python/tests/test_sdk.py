"""Unit tests of the Python SDK under plain CPython (no component needed):

    cd sdk/python && python3 -m unittest discover tests
"""

import json
import unittest
from unittest import mock

import graft_sdk as graft
from graft_sdk import _wit
from graft_sdk.batch import Batch, BatchBuilder, Uint


def wit_from(lines):
    """A WIT batch as graft would send it, built column by column."""
    b = BatchBuilder()
    for name, tags, fields, ts in lines:
        m = b.metric(name, ts)
        for k, v in tags.items():
            m.tag(k, v)
        for k, v in fields.items():
            m.field(k, v)
    return b.finish().to_wit()


def rows(batch):
    return [(m.name, m.tags, m.fields, m.timestamp) for m in batch]


def check_contract(w):
    """The invariants graft checks on every batch a plugin returns."""
    raw = w.string_data.encode()
    assert w.string_ends[-1:] in ([len(raw)], []) or not raw
    prev = 0
    for e in w.string_ends:
        assert prev <= e <= len(raw)
        raw[:e].decode()
        prev = e
    n = len(w.names)
    strings = Batch.from_wit(w)._strings()
    for offs, length in ((w.tag_offsets, len(w.tag_keys)), (w.field_offsets, len(w.field_keys))):
        assert len(offs) == n + 1 and offs[0] == 0 and offs[-1] == length
        assert all(a <= b for a, b in zip(offs, offs[1:]))
    for i in range(n):
        keys = [strings[k] for k in w.tag_keys[w.tag_offsets[i]:w.tag_offsets[i + 1]]]
        assert keys == sorted(set(keys)), keys
        assert w.field_offsets[i + 1] > w.field_offsets[i]


class BatchTest(unittest.TestCase):
    def setUp(self):
        self.w = wit_from([
            ("cpu", {"host": "a", "cpu": "cpu0"}, {"usage": 1.5, "n": 3, "u": Uint(7), "ok": True, "s": "hé"}, 1),
            ("温度", {"部屋": "会議室"}, {"値": 21.5}, 2),
        ])

    def test_round_trip_keeps_values_and_types(self):
        b = Batch.from_wit(self.w)
        self.assertEqual(rows(b), [
            ("cpu", {"cpu": "cpu0", "host": "a"}, {"usage": 1.5, "n": 3, "u": 7, "ok": True, "s": "hé"}, 1),
            ("温度", {"部屋": "会議室"}, {"値": 21.5}, 2),
        ])
        self.assertIsInstance(b[0].field("u"), Uint)
        self.assertNotIsInstance(b[0].field("n"), Uint)
        self.assertIs(b[0].field("ok"), True)
        out = b.to_wit()
        check_contract(out)
        self.assertEqual(out.string_data, self.w.string_data, "unchanged strings are passed back as they came")

    def test_rename_field_replaces_an_existing_one(self):
        w = wit_from([("m", {}, {"a": 1.0, "b": 2.0}, 1), ("m", {}, {"b": 3.0}, 2)])
        b = Batch.from_wit(w)
        self.assertEqual(b.rename_field("a", "b"), 1)
        self.assertEqual([m.fields for m in b], [{"b": 1.0}, {"b": 3.0}])
        check_contract(b.to_wit())

    def test_set_tag_keeps_tags_sorted_and_overwrites(self):
        b = Batch.from_wit(self.w)
        b.set_tag("dc", "x")
        b.set_tag("host", "z")
        b.set_tag_if_absent("cpu", "never")
        out = b.to_wit()
        check_contract(out)
        again = Batch.from_wit(out)
        self.assertEqual(again[0].tag_items(), [("cpu", "cpu0"), ("dc", "x"), ("host", "z")])
        self.assertEqual(again[1].tag_items(), [("cpu", "never"), ("dc", "x"), ("host", "z"), ("部屋", "会議室")])

    def test_new_non_ascii_strings_get_byte_offsets(self):
        b = Batch.from_wit(self.w)
        b.rename_measurement("cpu", "プロセッサ")
        b.set_tag("ü", "ñ")
        out = b.to_wit()
        check_contract(out)
        self.assertEqual([m.name for m in Batch.from_wit(out)], ["プロセッサ", "温度"])

    def test_retain_and_field_filters(self):
        b = Batch.from_wit(self.w)
        self.assertEqual(b.retain_fields(lambda k: k != "値"), 1)
        self.assertEqual(len(b), 1)
        b.retain_tags(lambda k: k == "host")
        self.assertEqual(b[0].tags, {"host": "a"})
        b.retain(lambda m: m.name != "cpu")
        self.assertEqual(len(b), 0)
        check_contract(b.to_wit())

    def test_map_names_and_append(self):
        b = Batch.from_wit(self.w)
        b.map_names(str.upper)
        b.append(Batch.from_wit(self.w))
        self.assertEqual([m.name for m in b], ["CPU", "温度", "cpu", "温度"])
        check_contract(b.to_wit())

    def test_builder_drops_non_finite_and_empty_metrics_and_last_tag_wins(self):
        b = BatchBuilder()
        b.metric("nothing", 1).field("x", float("nan"))
        b.metric("m", 2).tag("k", "1").tag("k", "2").field("big", 2**63).field("inf", float("inf")).field("f", 1.0)
        batch = b.finish()
        self.assertEqual(rows(batch), [("m", {"k": "2"}, {"big": 2**63, "f": 1.0}, 2)])
        self.assertIsInstance(batch[0].field("big"), Uint)
        b2 = BatchBuilder()
        b2.metric("m", 1).field("x", [1])
        with self.assertRaises(TypeError):
            b2.finish()

    def test_push_of_a_builder_says_what_to_call_instead(self):
        b = BatchBuilder()
        pending = BatchBuilder().metric("m", 1).field("f", 1.0)
        with self.assertRaises(TypeError) as e:
            b.push(pending)
        self.assertIn("builder.metric(name, timestamp)", str(e.exception))
        with self.assertRaises(TypeError) as e:
            b.push({"name": "m"})
        self.assertIn("not dict", str(e.exception))
        # Rows of a batch are what push copies.
        b.push(Batch.from_wit(self.w)[1])
        self.assertEqual(rows(b.finish()), [("温度", {"部屋": "会議室"}, {"値": 21.5}, 2)])


class ConfigTest(unittest.TestCase):
    def test_type_errors_name_the_key_like_the_rust_sdk(self):
        c = graft.Config.parse('{"to": 42}')
        with self.assertRaises(graft.PluginError) as e:
            c.string("to")
        self.assertEqual(str(e.exception), "to: invalid type: integer `42`, expected a string")
        with self.assertRaises(graft.PluginError) as e:
            graft.Config.parse("{}").string("from")
        self.assertEqual(e.exception.field, "from")
        self.assertIn("missing field `from`", e.exception.message)

    def test_nested_paths_and_unknown_keys(self):
        c = graft.Config.parse(json.dumps({"tags": {"a": 1}, "x": 1}))
        with self.assertRaises(graft.PluginError) as e:
            c.string_map("tags")
        self.assertEqual(e.exception.field, "tags.a")
        c = graft.Config.parse(json.dumps({"name": "n", "typo": 1}))
        c.string("name")
        with self.assertRaises(graft.PluginError) as e:
            c.check_unknown()
        self.assertEqual(e.exception.field, "typo")

    def test_bad_json_and_wrong_shape(self):
        for text in ("{", "[1,2,3]", "null"):
            with self.assertRaises(graft.PluginError):
                graft.Config.parse(text)


class ExportTest(unittest.TestCase):
    def test_processor_export_converts_errors_and_batches(self):
        class Tagger:
            def __init__(self, config):
                self.value = config.string("value")

            def process(self, batch):
                batch.set_tag("t", self.value)
                return batch

        export = graft.processor(Tagger)()
        with self.assertRaises(_wit.Err) as e:
            export.init('{"value": 1}')
        self.assertEqual(e.exception.value.field, "value")
        with self.assertRaises(_wit.Err) as e:
            export.init('{"value": "v", "extra": true}')
        self.assertEqual(e.exception.value.message, "unknown field `extra`")
        export.init('{"value": "v"}')
        out = export.process(wit_from([("m", {"z": "1"}, {"f": 1.0}, 5)]))
        check_contract(out)
        self.assertEqual(Batch.from_wit(out)[0].tags, {"t": "v", "z": "1"})

    def test_unexpected_exceptions_become_errors_not_crashes(self):
        class Broken:
            def __init__(self, config):
                pass

            def process(self, batch):
                return {}["missing"]

        export = graft.processor(Broken)()
        export.init("{}")
        with self.assertRaises(_wit.Err) as e:
            export.process(wit_from([("m", {}, {"f": 1.0}, 5)]))
        self.assertIn("KeyError", e.exception.value.message)

    def test_tracebacks_name_the_plugins_frames_without_reading_files(self):
        class Deep:
            def __init__(self, config):
                pass

            def helper(self):
                raise ValueError("bad value")

            def process(self, batch):
                return self.helper()

        export = graft.processor(Deep)()
        export.init("{}")
        opened = []

        def refuse(name):
            def call(*args, **kwargs):
                opened.append((name, args))
                raise OSError(f"{name} called")
            return call

        # Inside a component every file lookup is a sandbox refusal: the
        # traceback must come from the code objects alone.
        with mock.patch("builtins.open", refuse("open")), \
                mock.patch("io.open_code", refuse("open_code")), \
                mock.patch("os.stat", refuse("stat")), \
                mock.patch("linecache.getline", refuse("getline")), \
                mock.patch("linecache.updatecache", refuse("updatecache")):
            with self.assertRaises(_wit.Err) as e:
                export.process(wit_from([("m", {}, {"f": 1.0}, 5)]))
        self.assertEqual(opened, [])
        message = e.exception.value.message
        self.assertTrue(message.startswith("ValueError: bad value (traceback: "), message)
        self.assertIn("in process > ", message)
        self.assertRegex(message, r"test_sdk\.py:\d+ in helper\)$")
        self.assertNotIn("exports.py", message)

    def test_output_errors_map_to_write_errors(self):
        class Out:
            def __init__(self, config):
                self.mode = config.string("mode")

            def write(self, batch):
                if self.mode == "retry":
                    raise graft.Retry("server busy")
                if self.mode == "partial":
                    raise graft.Partial([0], [1], "one bad")
                raise graft.Reject("never")

        for mode, kind in (("retry", _wit.WriteError_Retry), ("partial", _wit.WriteError_Partial),
                           ("reject", _wit.WriteError_Reject)):
            export = graft.output(Out)()
            export.init(json.dumps({"mode": mode}))
            with self.assertRaises(_wit.Err) as e:
                export.write(wit_from([("m", {}, {"f": 1.0}, 5), ("m", {}, {"f": 2.0}, 6)]))
            self.assertIsInstance(e.exception.value, kind)


if __name__ == "__main__":
    unittest.main()
