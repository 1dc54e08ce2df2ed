//! Writes the demo Word document `demo/source/430100/documents/cs-jd-2021-1112.docx`: a
//! 政策解读 with Chinese-Word heading styles (style id `1`, name “heading 1”), paragraphs and
//! a table, the way Word saves them. Its metadata is the sidecar `cs-jd-2021-1112.toml`.
//!
//! Run by `demo/build.sh` when the document is missing:
//! `cargo run -p content-sync --example demo_docx -- OUT.docx`.

use std::io::Write;

const W: &str = "http://schemas.openxmlformats.org/wordprocessingml/2006/main";

enum Block {
    Heading(&'static str),
    Para(&'static str),
    Table(&'static [&'static [&'static str]]),
}

const BODY: &[Block] = &[
    Block::Heading("一、这份文件讲了什么"),
    Block::Para("2021年11月12日，长沙市人民政府办公厅印发文件，从标准化、规范化、便利化和组织保障四个方面部署政务公开工作。"),
    Block::Heading("二、和群众有关的变化"),
    Block::Table(&[
        &["方面", "主要举措", "群众怎么用"],
        &["标准化", "对照各领域标准指引调整完善政务公开事项目录", "在“公开目录”中按领域查阅"],
        &["规范化", "完善现行有效规章和规范性文件库；规范依申请公开办理流程", "查文件看效力状态；依法申请公开"],
        &["便利化", "依托12345政务热线提供政策咨询“一号答”；完善政府信息查阅场所功能", "拨打12345；到政务公开专区查阅"],
    ]),
    Block::Heading("三、依申请公开的时限"),
    Block::Para("自收到申请之日起20个工作日内予以答复；需要延长答复期限的，应当经政府信息公开工作机构负责人批准并告知申请人，延长的期限不得超过20个工作日。"),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args().nth(1).unwrap_or_else(|| "cs-jd-2021-1112.docx".into());
    let mut body = String::new();
    for block in BODY {
        match block {
            Block::Heading(t) => body.push_str(&format!(
                "<w:p><w:pPr><w:pStyle w:val=\"1\"/></w:pPr><w:r><w:t>{t}</w:t></w:r></w:p>"
            )),
            Block::Para(t) => body.push_str(&format!("<w:p><w:r><w:t>{t}</w:t></w:r></w:p>")),
            Block::Table(rows) => {
                body.push_str("<w:tbl>");
                for row in *rows {
                    body.push_str("<w:tr>");
                    for cell in *row {
                        body.push_str(&format!(
                            "<w:tc><w:p><w:r><w:t>{cell}</w:t></w:r></w:p></w:tc>"
                        ));
                    }
                    body.push_str("</w:tr>");
                }
                body.push_str("</w:tbl>");
            }
        }
    }
    let parts = [
        (
            "[Content_Types].xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"><Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/><Default Extension=\"xml\" ContentType=\"application/xml\"/><Override PartName=\"/word/document.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/><Override PartName=\"/word/styles.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml\"/></Types>".to_string(),
        ),
        (
            "_rels/.rels",
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"><Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"word/document.xml\"/></Relationships>".to_string(),
        ),
        (
            "word/_rels/document.xml.rels",
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"><Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles\" Target=\"styles.xml\"/></Relationships>".to_string(),
        ),
        ("word/styles.xml", format!("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><w:styles xmlns:w=\"{W}\"><w:style w:type=\"paragraph\" w:styleId=\"1\"><w:name w:val=\"heading 1\"/></w:style></w:styles>")),
        ("word/document.xml", format!("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><w:document xmlns:w=\"{W}\"><w:body>{body}</w:body></w:document>")),
    ];
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&out)?);
    for (name, text) in parts {
        zip.start_file(name, zip::write::SimpleFileOptions::default())?;
        zip.write_all(text.as_bytes())?;
    }
    zip.finish()?;
    println!("wrote {out}");
    Ok(())
}
