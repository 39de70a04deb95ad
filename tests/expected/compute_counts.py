#!/usr/bin/env python3
"""Independent reference computation of grurec-prep's expected counts.

Standard library only (Python 3.11). It re-implements the data-preparation
rules in the most direct way possible (dicts, lists, full sorts, a naive
fixed-point filter loop) so that the C implementation can be checked against
numbers obtained by a different route.

Usage:
    python3 tests/expected/compute_counts.py --data /work/shared/data \
        --out tests/expected/counts.json
    python3 tests/expected/compute_counts.py --selftest

Rules (in this order):
 0. Window (--since / --until): keep only events with since <= time < until;
    the rest count as window_events_removed and are never seen again.
 1. Parse. Group events by session id (string). Within a session, order events
    by time, stable (ties keep input order). Sessions are ordered by the time of
    their first (post-sort) event, ties by order of first appearance in input.
 2. Drop consecutive repeats of the same item within a session (keep the first
    of each run), unless keep_repeats.
 3. Filter the (training) log until a full iteration removes nothing:
    (a) remove sessions with < min_session_length events (or > max, if set);
    (b) item support = remaining events per item; remove events of items with
        support < min_item_support.
    Step 2 is NOT redone afterwards.
 4. Time split (no test file): t_max = max time in filtered log; test =
    sessions whose last event time >= t_max - test_days * DAY. With a test
    file: test file gets steps 1-2 only, train file 1-3, no time split.
 5. Drop test events whose item is not in the final train split, then drop
    test sessions left with < min_session_length (2) events.
"""

import argparse
import collections
import datetime
import gzip
import json
import os
import sys

DAY_S = 86400
DAY_MS = 86400 * 1000


# --------------------------------------------------------------------------
# Parsers: each returns a list of (session_id:str, item:str, time:int) in
# input order.  Item ids are kept as strings (identity = exact text).
# --------------------------------------------------------------------------

def _open_text(path):
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="ascii", newline="")
    return open(path, "rt", encoding="ascii", newline="")


def _data_lines(path):
    """Yield the non-header, non-empty lines, without line terminators."""
    with _open_text(path) as f:
        header = f.readline()
        assert header, "empty file %s" % path
        for line in f:
            line = line.rstrip("\r\n")
            if line == "":
                continue
            yield line


def parse_gru4rec_tsv(path):
    # header: SessionId \t ItemId \t Time
    with _open_text(path) as f:
        hdr = f.readline().rstrip("\r\n").split("\t")
    assert hdr == ["SessionId", "ItemId", "Time"], hdr
    out = []
    for line in _data_lines(path):
        sid, item, t = line.split("\t")
        out.append((sid, item, int(t)))
    return out


def _utc_midnight_ms(datestr):
    # Days since 1970-01-01 via proleptic ordinals (no time zone involved).
    d = datetime.date.fromisoformat(datestr)
    days = d.toordinal() - datetime.date(1970, 1, 1).toordinal()
    return days * DAY_MS


def parse_diginetica_raw(path):
    # header: session_id;user_id;item_id;timeframe;eventdate
    with _open_text(path) as f:
        hdr = f.readline().rstrip("\r\n").split(";")
    assert hdr == ["session_id", "user_id", "item_id", "timeframe",
                   "eventdate"], hdr
    out = []
    for line in _data_lines(path):
        sid, _user, item, timeframe, eventdate = line.split(";")
        out.append((sid, item, _utc_midnight_ms(eventdate) + int(timeframe)))
    return out


def parse_retailrocket_sample(path):
    # header: timestamp \t user_id \t item_id \t session_id
    with _open_text(path) as f:
        hdr = f.readline().rstrip("\r\n").split("\t")
    assert hdr == ["timestamp", "user_id", "item_id", "session_id"], hdr
    out = []
    for line in _data_lines(path):
        ts, _user, item, sid = line.split("\t")
        out.append((sid, item, int(ts)))
    return out


# --------------------------------------------------------------------------
# Pipeline
# --------------------------------------------------------------------------

def build_sessions(events):
    """Step 1. Returns list of [sid, [(item, time), ...]] in session order."""
    groups = {}          # sid -> list of (time, input_index, item)
    first_seen = {}      # sid -> input index of first appearance
    for idx, (sid, item, t) in enumerate(events):
        if sid not in groups:
            groups[sid] = []
            first_seen[sid] = idx
        groups[sid].append((t, idx, item))
    sessions = []
    for sid, evs in groups.items():
        # explicit (time, input index) key == stable sort by time
        evs_sorted = sorted(evs, key=lambda e: (e[0], e[1]))
        sessions.append((evs_sorted[0][0], first_seen[sid], sid,
                         [(item, t) for (t, _i, item) in evs_sorted]))
    sessions.sort(key=lambda s: (s[0], s[1]))
    return [[sid, evs] for (_t0, _fs, sid, evs) in sessions]


def drop_repeats(sessions):
    """Step 2. Returns (new_sessions, n_removed)."""
    removed = 0
    out = []
    for sid, evs in sessions:
        kept = []
        for item, t in evs:
            if kept and kept[-1][0] == item:
                removed += 1
                continue
            kept.append((item, t))
        out.append([sid, kept])
    return out, removed


def filter_log(sessions, min_session_length, min_item_support,
               max_session_length=None):
    """Step 3. Returns (sessions, short_sessions_removed,
    short_session_events_removed, rare_item_events_removed)."""
    n_short_sess = 0
    n_short_ev = 0
    n_rare_ev = 0
    while True:
        removed_this_iter = 0
        # (a)
        kept = []
        for sid, evs in sessions:
            n = len(evs)
            if n < min_session_length or (
                    max_session_length is not None and n > max_session_length):
                n_short_sess += 1
                n_short_ev += n
                removed_this_iter += 1
            else:
                kept.append([sid, evs])
        sessions = kept
        # (b)
        support = collections.Counter(item for _sid, evs in sessions
                                      for item, _t in evs)
        rare = {item for item, c in support.items() if c < min_item_support}
        new_sessions = []
        for sid, evs in sessions:
            if rare:
                new_evs = [e for e in evs if e[0] not in rare]
                r = len(evs) - len(new_evs)
                n_rare_ev += r
                removed_this_iter += r
                evs = new_evs
            new_sessions.append([sid, evs])
        sessions = new_sessions
        if removed_this_iter == 0:
            break
    return sessions, n_short_sess, n_short_ev, n_rare_ev


def summarize_train(sessions, res):
    items = set()
    times = []
    pairs = 0
    n_ev = 0
    for _sid, evs in sessions:
        n_ev += len(evs)
        pairs += len(evs) - 1
        for item, t in evs:
            items.add(item)
            times.append(t)
    res["train_sessions"] = len(sessions)
    res["train_events"] = n_ev
    res["train_items"] = len(items)
    res["train_pairs"] = pairs
    res["train_t_min"] = min(times)
    res["train_t_max"] = max(times)
    return items


def finish_test(test_sessions, train_items, min_session_length, res):
    """Step 5 + test summary."""
    unknown = 0
    tmp = []
    for sid, evs in test_sessions:
        kept = [(item, t) for (item, t) in evs if item in train_items]
        unknown += len(evs) - len(kept)
        tmp.append([sid, kept])
    short_s = 0
    short_e = 0
    final = []
    for sid, evs in tmp:
        if len(evs) < min_session_length:
            short_s += 1
            short_e += len(evs)
        else:
            final.append([sid, evs])
    times = [t for _sid, evs in final for _item, t in evs]
    res["test_unknown_item_events"] = unknown
    res["test_short_sessions_removed"] = short_s
    res["test_short_session_events_removed"] = short_e
    res["test_sessions"] = len(final)
    res["test_events"] = len(times)
    res["test_t_min"] = min(times) if times else 0
    res["test_t_max"] = max(times) if times else 0
    return final


def prepare(train_events, test_events=None, *, keep_repeats=False,
            min_item_support=5, min_session_length=2, max_session_length=None,
            test_days=7, day=DAY_S, since=None, until=None):
    res = {}
    if since is not None or until is not None:
        lo = since if since is not None else -(1 << 63)
        hi = until if until is not None else 1 << 63
        kept = [e for e in train_events if lo <= e[2] < hi]
        res["window_events_removed"] = len(train_events) - len(kept)
        train_events = kept
    res["input_events"] = len(train_events)
    res["input_sessions"] = len({e[0] for e in train_events})
    sessions = build_sessions(train_events)
    if keep_repeats:
        res["repeat_events_removed"] = 0
    else:
        sessions, r = drop_repeats(sessions)
        res["repeat_events_removed"] = r
    sessions, a_s, a_e, b_e = filter_log(sessions, min_session_length,
                                         min_item_support, max_session_length)
    res["filter_short_sessions_removed"] = a_s
    res["filter_short_session_events_removed"] = a_e
    res["filter_rare_item_events_removed"] = b_e

    if test_events is None:
        t_max = max(t for _sid, evs in sessions for _item, t in evs)
        cut = t_max - test_days * day
        train, test = [], []
        for sid, evs in sessions:
            last = evs[-1][1]   # sessions are time-sorted
            assert last == max(t for _i, t in evs)
            (test if last >= cut else train).append([sid, evs])
        res["split_t_max"] = t_max
        res["split_cut"] = cut
    else:
        train = sessions
        res["test_input_events"] = len(test_events)
        res["test_input_sessions"] = len({e[0] for e in test_events})
        test = build_sessions(test_events)
        if keep_repeats:
            res["test_repeat_events_removed"] = 0
        else:
            test, r = drop_repeats(test)
            res["test_repeat_events_removed"] = r
    train_items = summarize_train(train, res)
    finish_test(test, train_items, min_session_length, res)
    return res


# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------

def _check_conservation(name, r):
    """Every input event / session is accounted for exactly once."""
    kept = (r["input_events"] - r["repeat_events_removed"]
            - r["filter_short_session_events_removed"]
            - r["filter_rare_item_events_removed"])
    kept_s = r["input_sessions"] - r["filter_short_sessions_removed"]
    test_acc = (r["test_events"] + r["test_unknown_item_events"]
                + r["test_short_session_events_removed"])
    test_acc_s = r["test_sessions"] + r["test_short_sessions_removed"]
    if "test_input_events" in r:      # separate test file
        assert kept == r["train_events"], name
        assert kept_s == r["train_sessions"], name
        assert test_acc == (r["test_input_events"]
                            - r["test_repeat_events_removed"]), name
        assert test_acc_s == r["test_input_sessions"], name
    else:                             # time split of the filtered log
        assert kept == r["train_events"] + test_acc, name
        assert kept_s == r["train_sessions"] + test_acc_s, name
    assert r["train_pairs"] == r["train_events"] - r["train_sessions"], name


def compute_all(data):
    digi_train = parse_gru4rec_tsv(os.path.join(data, "diginetica",
                                                "train.tsv.gz"))
    digi_test = parse_gru4rec_tsv(os.path.join(data, "diginetica",
                                               "test.tsv.gz"))
    raw_digi = parse_diginetica_raw(os.path.join(data, "raw",
                                                 "diginetica-sample.csv"))
    raw_rr = parse_retailrocket_sample(os.path.join(data, "raw",
                                                    "retailrocket-sample.tsv"))
    out = {}
    out["digi_published"] = prepare(digi_train, digi_test, keep_repeats=True,
                                    min_item_support=1, min_session_length=2)
    out["digi_defaults"] = prepare(digi_train, digi_test, keep_repeats=False,
                                   min_item_support=5, min_session_length=2)
    out["raw_diginetica_7d"] = prepare(raw_digi, keep_repeats=False,
                                       min_item_support=5,
                                       min_session_length=2, test_days=7,
                                       day=DAY_MS)
    out["raw_retailrocket_7d"] = prepare(raw_rr, keep_repeats=False,
                                         min_item_support=5,
                                         min_session_length=2, test_days=7,
                                         day=DAY_S)
    out["raw_retailrocket_7d_keep1"] = prepare(raw_rr, keep_repeats=True,
                                               min_item_support=1,
                                               min_session_length=2,
                                               test_days=7, day=DAY_S)
    # Time windows: ISO dates (converted here with datetime, at UTC midnight) on
    # the ms log, plain unix seconds on the s log.
    out["raw_diginetica_window"] = prepare(
        raw_digi, keep_repeats=False, min_item_support=5,
        min_session_length=2, test_days=7, day=DAY_MS,
        since=_utc_midnight_ms("2016-03-01"),
        until=_utc_midnight_ms("2016-05-15"))
    out["raw_retailrocket_window"] = prepare(
        raw_rr, keep_repeats=False, min_item_support=2,
        min_session_length=2, test_days=3, day=DAY_S,
        since=1438000000, until=1442000000)
    for name, r in out.items():
        _check_conservation(name, r)
    p = out["digi_published"]
    expect = dict(train_sessions=186670, train_events=906140,
                  train_items=43097, test_sessions=15963, test_events=76821)
    for k, v in expect.items():
        if p[k] != v:
            print("WARNING: digi_published %s = %d, expected %d"
                  % (k, p[k], v), file=sys.stderr)
    return out


# --------------------------------------------------------------------------
# Self test on tiny hand-made inputs
# --------------------------------------------------------------------------

def selftest():
    # --- step 1: stable time sort, non-contiguous sessions, session order
    ev = [("b", "x", 5), ("a", "p", 3), ("b", "y", 1), ("a", "q", 3),
          ("c", "r", 1), ("b", "z", 1)]
    s = build_sessions(ev)
    # b: first time 1 (y, z tie -> input order y then z), then x
    # c: first time 1, appears after b in input -> b before c
    # a: first time 3, p before q (tie, input order)
    assert [x[0] for x in s] == ["b", "c", "a"], s
    assert s[0][1] == [("y", 1), ("z", 1), ("x", 5)], s
    assert s[2][1] == [("p", 3), ("q", 3)], s
    # session order tie broken by FIRST APPEARANCE, not by post-sort position:
    # d appears first (index 0) but its min-time event comes later in input.
    ev = [("d", "i", 9), ("e", "j", 2), ("d", "k", 2)]
    s = build_sessions(ev)
    assert [x[0] for x in s] == ["d", "e"], s
    assert s[0][1] == [("k", 2), ("i", 9)]

    # --- step 2: consecutive repeats only (after time sorting)
    s = [["s", [("a", 1), ("a", 2), ("b", 3), ("a", 4), ("a", 5), ("a", 6)]]]
    s2, r = drop_repeats(s)
    assert r == 3 and s2[0][1] == [("a", 1), ("b", 3), ("a", 4)], s2
    # repeat only adjacent after sorting by time
    s = build_sessions([("s", "a", 1), ("s", "b", 3), ("s", "a", 2)])
    s2, r = drop_repeats(s)
    assert r == 1 and s2[0][1] == [("a", 1), ("b", 3)], s2

    # --- step 3: cascade. min_len 2, min_sup 2.
    # item z occurs twice (s1, s2); s3 is a single event -> removed in (a),
    # taking item w's only... construct a cascade:
    #   s1: x y      s2: y z     s3: z
    # iter1 (a): s3 removed (1 sess, 1 ev). (b): x:1 y:2 z:1 -> remove x, z
    #           (2 events) -> s1=[y], s2=[y]
    # iter2 (a): s1, s2 removed (2 sess, 2 ev). (b): nothing.
    # iter3: nothing -> stop.
    s = [["s1", [("x", 1), ("y", 2)]], ["s2", [("y", 3), ("z", 4)]],
         ["s3", [("z", 5)]]]
    out, a_s, a_e, b_e = filter_log(s, 2, 2)
    assert out == [] and (a_s, a_e, b_e) == (3, 3, 2), (out, a_s, a_e, b_e)
    # filtering can create new consecutive repeats; they stay.
    s = [["s1", [("a", 1), ("r", 2), ("a", 3)]], ["s2", [("a", 4), ("b", 5)]],
         ["s3", [("b", 6), ("a", 7)]]]
    out, a_s, a_e, b_e = filter_log(s, 2, 2)
    assert out[0] == ["s1", [("a", 1), ("a", 3)]], out
    assert (a_s, a_e, b_e) == (0, 0, 1)
    # max_session_length
    s = [["s1", [("a", 1), ("b", 2), ("c", 3)]], ["s2", [("a", 4), ("b", 5)]]]
    out, a_s, a_e, b_e = filter_log(s, 2, 1, max_session_length=2)
    assert [x[0] for x in out] == ["s2"] and (a_s, a_e, b_e) == (1, 3, 0)

    # --- step 4/5: split boundary is inclusive (>=), sessions never cut,
    # unknown items then short sessions in test.
    D = 10
    ev = [
        ("t1", "a", 0), ("t1", "b", 1),            # train
        ("t2", "a", 2), ("t2", "b", 3),            # train
        ("t3", "a", 4), ("t3", "c", 5),            # train
        ("x1", "a", 6), ("x1", "b", 10),           # last=10 >= 20-10 -> test
        ("x2", "b", 9), ("x2", "a", 9),            # last=9 < 10 -> train
        ("x3", "a", 18), ("x3", "b", 20),          # test
        ("x4", "c", 15), ("x4", "d", 16), ("x4", "d", 17),  # test
    ]
    # repeats: x4 d,d -> 1 removed. support (min 1) all fine.
    r = prepare(ev, keep_repeats=False, min_item_support=1,
                min_session_length=2, test_days=1, day=D)
    assert r["repeat_events_removed"] == 1
    assert r["split_t_max"] == 20 and r["split_cut"] == 10
    assert r["train_sessions"] == 4 and r["train_events"] == 8, r
    assert r["train_items"] == 3 and r["train_pairs"] == 4
    assert (r["train_t_min"], r["train_t_max"]) == (0, 9)
    # x4 = c d -> d unknown -> x4 = [c] -> short
    assert r["test_unknown_item_events"] == 1
    assert r["test_short_sessions_removed"] == 1
    assert r["test_short_session_events_removed"] == 1
    assert r["test_sessions"] == 2 and r["test_events"] == 4
    assert (r["test_t_min"], r["test_t_max"]) == (6, 20)
    # support filter runs on the repeat-free log (min_item_support=2):
    # after repeats: t1 ab, t2 ab, t3 ac, x1 ab, x2 ba, x3 ab, x4 cd
    # it1 (a) none; (b) d:1 -> 1 event removed -> x4=[c]
    # it2 (a) x4 removed (1 sess, 1 ev); (b) c:1 -> 1 event -> t3=[a]
    # it3 (a) t3 removed (1 sess, 1 ev); (b) none.  it4: nothing.
    r = prepare(ev, keep_repeats=False, min_item_support=2,
                min_session_length=2, test_days=1, day=D)
    assert r["filter_short_sessions_removed"] == 2, r
    assert r["filter_short_session_events_removed"] == 2, r
    assert r["filter_rare_item_events_removed"] == 2, r
    # keep_repeats: d,d gives d support 2, nothing filtered
    r2 = prepare(ev, keep_repeats=True, min_item_support=2,
                 min_session_length=2, test_days=1, day=D)
    assert r2["repeat_events_removed"] == 0
    assert r2["filter_rare_item_events_removed"] == 0
    assert r2["filter_short_sessions_removed"] == 0
    assert r["train_sessions"] + r["test_sessions"] == 5

    # test-file mode: test gets steps 1-2 only, no support filter.
    tr = [("1", "a", 1), ("1", "b", 2), ("2", "a", 3), ("2", "b", 4)]
    te = [("3", "a", 5), ("3", "a", 6), ("3", "b", 7), ("4", "z", 8),
          ("4", "a", 9), ("5", "b", 10)]
    r = prepare(tr, te, keep_repeats=False, min_item_support=1,
                min_session_length=2)
    assert r["test_input_events"] == 6 and r["test_input_sessions"] == 3
    assert r["test_repeat_events_removed"] == 1
    assert r["test_unknown_item_events"] == 1
    assert r["test_short_sessions_removed"] == 2            # 4 -> [a], 5
    assert r["test_short_session_events_removed"] == 2
    assert r["test_sessions"] == 1 and r["test_events"] == 2
    assert (r["test_t_min"], r["test_t_max"]) == (5, 7)

    # window: half-open [since, until), before sessions are formed, so a
    # session crossing a bound is cut and its outside events are not counted
    # anywhere else.
    ev = [("w1", "a", 1), ("w1", "b", 2), ("w2", "a", 3), ("w2", "b", 4),
          ("w2", "a", 5), ("w3", "b", 6), ("w3", "a", 7), ("w4", "a", 8),
          ("w4", "b", 9)]
    r = prepare(ev, keep_repeats=False, min_item_support=1,
                min_session_length=2, test_days=1, day=1, since=2, until=8)
    assert r["window_events_removed"] == 3, r            # t=1, 8, 9
    assert r["input_events"] == 6 and r["input_sessions"] == 3, r
    assert r["filter_short_sessions_removed"] == 1, r    # w1 -> [b]

    # time conventions
    assert _utc_midnight_ms("1970-01-02") == 86400000
    assert _utc_midnight_ms("2016-05-09") == 1462752000000
    print("selftest OK")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--out", default=None)
    ap.add_argument("--selftest", action="store_true")
    args = ap.parse_args()
    if args.selftest:
        selftest()
        return
    out = compute_all(args.data)
    text = json.dumps(out, sort_keys=True, indent=2) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
