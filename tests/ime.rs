//! The pinyin input method with the lexicon that ships: what a resident sees on the candidate
//! bar for the words, names and addresses they type. See tests.rs.

use std::time::Instant;

use kiosk::ime::{Candidate, Composer, Fuzzy, Ime};

fn ime() -> &'static Ime {
    Ime::shared()
}

fn texts(input: &str, limit: usize) -> Vec<String> {
    ime().candidates(input, limit).into_iter().map(|c| c.text).collect()
}

fn top(input: &str) -> String {
    texts(input, 1).into_iter().next().unwrap_or_default()
}

/// Position of `text` among the first `limit` candidates, for messages that show the bar.
fn rank(input: &str, text: &str, limit: usize) -> Option<usize> {
    texts(input, limit).iter().position(|t| t == text)
}

/// Chooses `text` from the candidates of `input` (within the first `limit`), asserting it is
/// offered, and returns the letters left to convert.
fn choose<'a>(input: &'a str, text: &str, limit: usize) -> &'a str {
    let cands = ime().candidates(input, limit);
    let Some(c) = cands.iter().find(|c| c.text == text) else {
        panic!("{text} not among the first {limit} candidates for {input}: {cands:?}")
    };
    &input[c.consumed..]
}

#[test]
fn full_syllables_put_the_service_word_first() {
    assert_eq!(top("shebao"), "社保");
    assert_eq!(top("hukou"), "户口");
    assert_eq!(top("dibao"), "低保");
    assert_eq!(top("gongjijin"), "公积金");
    assert_eq!(top("shenfenzheng"), "身份证");
}

#[test]
fn abbreviations_mixed_and_partial_syllables() {
    assert!(rank("sb", "社保", 3).is_some(), "sb: {:?}", texts("sb", 10));
    assert_eq!(top("bj"), "北京", "bj: {:?}", texts("bj", 10));
    assert!(rank("shb", "社保", 3).is_some(), "shb: {:?}", texts("shb", 10));
    assert!(rank("sheb", "社保", 3).is_some(), "sheb: {:?}", texts("sheb", 10));
    assert!(rank("zhongg", "中国", 3).is_some(), "zhongg: {:?}", texts("zhongg", 10));
    // Upper case from a shifted keyboard reads the same.
    assert_eq!(top("SheBao"), "社保");
}

#[test]
fn whole_input_words_come_before_characters_of_its_start() {
    let cands = ime().candidates("shebao", 20);
    assert_eq!(cands[0], Candidate { text: "社保".into(), consumed: 6 });
    let first_partial = cands.iter().position(|c| c.consumed < 6).unwrap_or(cands.len());
    assert!(cands[first_partial..].iter().all(|c| c.consumed < 6), "{cands:?}");
    // The characters offered for the start are those of she, the first syllable.
    assert!(cands.iter().any(|c| c.text == "社" && c.consumed == 3), "{cands:?}");
    // Nothing is offered that would leave letters which no longer read as pinyin.
    assert!(cands.iter().all(|c| c.consumed == 6 || c.consumed == 3), "{cands:?}");
}

#[test]
fn a_name_can_be_typed_character_by_character() {
    // 王小明: no such word in the lexicon, so it is built from 王, 小, 明.
    let rest = choose("wangxiaoming", "王", 10);
    assert_eq!(rest, "xiaoming");
    let rest = choose(rest, "小", 20);
    assert_eq!(rest, "ming");
    let rest = choose(rest, "明", 3);
    assert_eq!(rest, "");
    // Surnames read differently from the character's everyday reading are typeable.
    assert!(rank("zeng", "曾", 10).is_some(), "zeng: {:?}", texts("zeng", 10));
    assert!(rank("shan", "单", 30).is_some(), "shan: {:?}", texts("shan", 30));
    assert!(rank("ouyang", "欧阳", 3).is_some(), "ouyang: {:?}", texts("ouyang", 10));
}

#[test]
fn an_address_can_be_typed() {
    assert_eq!(top("changsha"), "长沙");
    assert_eq!(top("ningxiang"), "宁乡");
    assert_eq!(top("changshashi"), "长沙市");
    assert_eq!(top("ningxiangshi"), "宁乡市");
    // The whole address in one go, word by word, with the composer the keyboard uses.
    let mut composer = Composer::new();
    for key in "changshashiningxiangshi".chars() {
        assert!(composer.push(key));
    }
    let mut done = None;
    for word in ["长沙市", "宁乡市"] {
        let cands = composer.candidates(ime(), 10);
        let Some(c) = cands.iter().find(|c| c.text == word) else {
            panic!("{word} not offered for {}: {cands:?}", composer.letters())
        };
        done = composer.choose(c);
    }
    assert_eq!(done.as_deref(), Some("长沙市宁乡市"));
    assert!(composer.is_empty());
}

#[test]
fn v_stands_for_u_umlaut() {
    assert!(rank("lv", "绿", 5).is_some(), "lv: {:?}", texts("lv", 10));
    assert_eq!(top("nv"), "女");
    assert_eq!(top("lvse"), "绿色");
    assert_eq!(top("lue"), top("lve"));
}

#[test]
fn an_apostrophe_separates_syllables() {
    assert_eq!(top("xi'an"), "西安");
    assert_eq!(top("xian").chars().count(), 1, "xian alone reads as one syllable first");
    assert!(rank("xian", "西安", 30).is_some(), "xian: {:?}", texts("xian", 30));
    // Choosing 西 from xi'an leaves the letters after the apostrophe.
    let cands = ime().candidates("xi'an", 10);
    let Some(xi) = cands.iter().find(|c| c.text == "西") else { panic!("{cands:?}") };
    assert_eq!(&"xi'an"[xi.consumed..], "an");
}

#[test]
fn fuzzy_readings_help_residents_who_do_not_tell_sounds_apart() {
    let fuzzy = |input: &str, f: Fuzzy| -> Vec<String> {
        ime().candidates_with(input, 10, f).into_iter().map(|c| c.text).collect()
    };
    // Off by default: sebao is 色 + bao, not 社保.
    assert!(!texts("sebao", 10).contains(&"社保".to_string()), "{:?}", texts("sebao", 10));
    let retroflex = Fuzzy { retroflex: true, ..Fuzzy::default() };
    assert_eq!(fuzzy("sebao", retroflex).first().map(String::as_str), Some("社保"));
    assert!(fuzzy("zongguo", retroflex).contains(&"中国".to_string()));
    let n_l = Fuzzy { n_l: true, ..Fuzzy::default() };
    assert!(fuzzy("lingxiang", n_l).contains(&"宁乡".to_string()), "{:?}", fuzzy("lingxiang", n_l));
    let nasal = Fuzzy { nasal: true, ..Fuzzy::default() };
    assert!(fuzzy("chansha", nasal).contains(&"长沙".to_string()), "{:?}", fuzzy("chansha", nasal));
    // Exact readings still come first.
    assert_eq!(fuzzy("shebao", Fuzzy::ALL).first().map(String::as_str), Some("社保"));
    assert_eq!(fuzzy("xi'an", Fuzzy::ALL).first().map(String::as_str), Some("西安"));
}

#[test]
fn the_preedit_shows_how_letters_are_read() {
    assert_eq!(ime().spell("shebao"), "she'bao");
    assert_eq!(ime().spell("xian"), "xian");
    assert_eq!(ime().spell("xi'an"), "xi'an");
    assert_eq!(ime().spell("changshashi"), "chang'sha'shi");
    assert_eq!(ime().spell("sheb"), "she'b");
    assert_eq!(ime().spell("sb"), "s'b");
    assert_eq!(ime().spell("lvse"), "lv'se");
    assert_eq!(ime().spell("ShiI"), "ShiI", "unreadable input is shown as typed");
    assert_eq!(ime().spell(""), "");
    let mut composer = Composer::new();
    "wangxiaoming".chars().for_each(|c| assert!(composer.push(c)));
    let cands = composer.candidates(ime(), 20);
    let Some(wang) = cands.iter().find(|c| c.text == "王") else { panic!("{cands:?}") };
    composer.choose(wang);
    assert_eq!(composer.preedit_spelled(ime()), "王xiao'ming");
}

#[test]
fn empty_and_garbage_input_give_nothing() {
    for input in
        ["", "'", "''", "123", "iii", "vvv", "u", "社保", "she bao", "ｓｈｅ", "\u{0}", "!@#"]
    {
        assert_eq!(ime().candidates(input, 10), Vec::new(), "{input:?}");
    }
    assert_eq!(ime().candidates("shebao", 0), Vec::new());
    // Long and odd input must not panic or hang.
    let long = "zhonghuarenmingongheguo".repeat(20);
    assert!(!ime().candidates(&long, 10).is_empty());
    assert_eq!(ime().candidates("shebaoi", 5)[0].text, "社保");
}

#[test]
fn composer_backspace_takes_back_a_choice() {
    let mut composer = Composer::new();
    for key in "shebao".chars() {
        composer.push(key);
    }
    assert!(!composer.push('1'), "digits are not pinyin");
    let cands = composer.candidates(ime(), 20);
    let Some(she) = cands.iter().find(|c| c.text == "社") else { panic!("{cands:?}") };
    assert_eq!(composer.choose(she), None);
    assert_eq!(composer.preedit(), "社bao");
    // Backspace through the letters, then it gives back the choice as letters.
    for _ in 0..3 {
        assert!(composer.backspace());
    }
    assert_eq!(composer.preedit(), "社");
    assert!(composer.backspace());
    assert_eq!(composer.preedit(), "she");
    assert_eq!(composer.commit_raw(), "she");
    assert!(composer.is_empty());
    assert!(!composer.backspace());
}

#[test]
fn a_custom_lexicon_is_checked_and_used() {
    let ime = Ime::from_tsv("# test\n社\tshe\t5\n设\tshe\t9\n社保\tshe bao\t1\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let got: Vec<_> = ime.candidates("she", 5).into_iter().map(|c| c.text).collect();
    assert_eq!(got, ["设", "社"], "more frequent first");
    assert_eq!(ime.candidates("sb", 5)[0].text, "社保");
    let err = Ime::from_tsv("社保\tshe\t1\n").err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("line 1"), "{err}");
}

/// Prints per-keystroke latency figures (debug builds are several times slower than the
/// kiosk's release build); the budget is 10 ms per keystroke, checked by reading, not asserted.
#[test]
fn latency_figures() {
    let start = Instant::now();
    let fresh = Ime::new();
    let load = start.elapsed();
    let phrases = [
        "shebao",
        "changshashiningxiangshi",
        "wangxiaoming",
        "zhonghuarenmingongheguo",
        "sbzgbj",
        "xi'anshi",
        "shenfenzhenghaoma",
    ];
    let mut times = Vec::new();
    for phrase in phrases {
        for end in 1..=phrase.len() {
            let t = Instant::now();
            let _ = fresh.candidates(&phrase[..end], 30);
            times.push(t.elapsed());
        }
    }
    times.sort();
    let pct = |p: usize| times[(times.len() - 1) * p / 100];
    println!(
        "ime: lexicon of {} entries parsed in {load:?}; {} keystrokes, median {:?}, p95 {:?}, max {:?}",
        fresh.len(),
        times.len(),
        pct(50),
        pct(95),
        pct(100)
    );
}
