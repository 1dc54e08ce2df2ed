//! Writes the demo county catalogue workbook
//! `demo/source/430182/catalog/宁乡市基层政务公开标准目录.xlsx` in the layout admins really
//! use: a merged title row, a two-row header (公开对象, 公开方式 and 公开层级 as ticked
//! sub-columns), merged 一级事项 cells and one sheet per 领域.
//!
//! Run by `demo/build.sh` when the workbook is missing:
//! `cargo run -p content-sync --example demo_xlsx -- OUT.xlsx`.

use rust_xlsxwriter::{Format, FormatAlign, Workbook, XlsxError};

/// (一级事项, [(二级事项, 公开内容, 公开依据, 公开主体, 渠道, [全社会, 特定群体], [主动, 依申请], [县级, 乡级])]).
type Rows = &'static [(
    &'static str,
    &'static [(
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        [bool; 2],
        [bool; 2],
        [bool; 2],
    )],
)];

const SHEETS: &[(&str, Rows)] = &[
    (
        "涉农补贴",
        &[
            (
                "耕地地力保护补贴",
                &[
                    (
                        "政策依据",
                        "补贴政策文件、补贴对象、补贴标准",
                        "《财政部 农业农村部关于实施农业生产发展等项目的通知》",
                        "宁乡市农业农村局、财政局",
                        "政府网站、村（社区）公开栏",
                        [true, false],
                        [true, false],
                        [true, true],
                    ),
                    (
                        "补贴发放",
                        "补贴对象、补贴面积、补贴金额（隐去个人敏感信息）",
                        "《湖南省耕地地力保护补贴实施方案》",
                        "乡镇（街道）",
                        "村（社区）公开栏",
                        [false, true],
                        [true, false],
                        [false, true],
                    ),
                ],
            ),
            (
                "农机购置补贴",
                &[
                    (
                        "补贴政策",
                        "实施方案、补贴机具品目、补贴额一览表",
                        "《农业机械购置补贴实施指导意见》",
                        "宁乡市农业农村局",
                        "政府网站、政务服务中心",
                        [true, false],
                        [true, false],
                        [true, false],
                    ),
                    (
                        "补贴申请",
                        "申请条件、申请材料、办理流程、咨询电话",
                        "《农业机械购置补贴实施指导意见》",
                        "宁乡市农业农村局",
                        "政府网站、查询一体机",
                        [true, false],
                        [true, false],
                        [true, false],
                    ),
                    (
                        "补贴结果",
                        "享受补贴的购机者、机具、补贴额",
                        "《农业机械购置补贴实施指导意见》",
                        "宁乡市农业农村局",
                        "政府网站",
                        [true, false],
                        [true, false],
                        [true, false],
                    ),
                ],
            ),
            (
                "农村危房改造补助",
                &[(
                    "补助对象认定",
                    "补助对象名单、改造方式、补助标准",
                    "《农村危房改造补助资金管理办法》",
                    "宁乡市住房和城乡建设局、乡镇（街道）",
                    "村（社区）公开栏、政府网站",
                    [false, true],
                    [true, false],
                    [true, true],
                )],
            ),
        ],
    ),
    (
        "公共文化服务",
        &[
            (
                "公共文化机构",
                &[
                    (
                        "机构信息",
                        "图书馆、文化馆、博物馆名称、地址、开放时间、联系电话",
                        "《中华人民共和国公共文化服务保障法》",
                        "宁乡市文化旅游广电体育局",
                        "政府网站、查询一体机",
                        [true, false],
                        [true, false],
                        [true, false],
                    ),
                    (
                        "免费开放",
                        "免费开放项目、开放时间",
                        "《中华人民共和国公共文化服务保障法》",
                        "宁乡市文化旅游广电体育局",
                        "政府网站、场馆公告栏",
                        [true, false],
                        [true, false],
                        [true, true],
                    ),
                ],
            ),
            (
                "文化活动",
                &[
                    (
                        "活动预告",
                        "群众文化活动名称、时间、地点",
                        "《中华人民共和国公共文化服务保障法》",
                        "宁乡市文化旅游广电体育局、乡镇（街道）",
                        "政府网站、政务新媒体、村（社区）公开栏",
                        [true, false],
                        [true, false],
                        [true, true],
                    ),
                    (
                        "送戏下乡",
                        "场次安排、演出地点",
                        "《中华人民共和国公共文化服务保障法》",
                        "宁乡市文化旅游广电体育局",
                        "政务新媒体、村（社区）公开栏",
                        [true, false],
                        [true, false],
                        [true, true],
                    ),
                ],
            ),
        ],
    ),
];

fn main() -> Result<(), XlsxError> {
    let out = std::env::args().nth(1).unwrap_or_else(|| "宁乡市基层政务公开标准目录.xlsx".into());
    let mut book = Workbook::new();
    let center = Format::new()
        .set_align(FormatAlign::Center)
        .set_align(FormatAlign::VerticalCenter)
        .set_text_wrap();
    for (sheet, groups) in SHEETS {
        let ws = book.add_worksheet();
        ws.set_name(*sheet)?;
        ws.merge_range(0, 0, 0, 13, &format!("宁乡市{sheet}领域基层政务公开标准目录"), &center)?;
        for (c, h) in [
            "序号",
            "一级事项",
            "二级事项",
            "公开内容（要素）",
            "公开依据",
            "公开时限",
            "公开主体",
            "公开渠道和载体",
        ]
        .iter()
        .enumerate()
        {
            ws.merge_range(1, c as u16, 2, c as u16, h, &center)?;
        }
        for (c, (group, subs)) in [
            ("公开对象", ["全社会", "特定群体"]),
            ("公开方式", ["主动", "依申请"]),
            ("公开层级", ["县级", "乡级"]),
        ]
        .iter()
        .enumerate()
        {
            let first = 8 + 2 * c as u16;
            ws.merge_range(1, first, 1, first + 1, group, &center)?;
            ws.write_string(2, first, subs[0])?;
            ws.write_string(2, first + 1, subs[1])?;
        }
        let mut row = 3u32;
        let mut serial = 1;
        for (level1, items) in *groups {
            let first_row = row;
            for (level2, content, basis, subject, channels, audience, manner, tier) in *items {
                ws.write_number(row, 0, f64::from(serial))?;
                ws.write_string(row, 2, *level2)?;
                ws.write_string(row, 3, *content)?;
                ws.write_string(row, 4, *basis)?;
                ws.write_string(row, 5, "信息形成或变更之日起20个工作日内")?;
                ws.write_string(row, 6, *subject)?;
                ws.write_string(row, 7, *channels)?;
                for (c, ticks) in [audience, manner, tier].iter().enumerate() {
                    for (k, on) in ticks.iter().enumerate() {
                        if *on {
                            ws.write_string(row, 8 + 2 * c as u16 + k as u16, "√")?;
                        }
                    }
                }
                row += 1;
                serial += 1;
            }
            if row - first_row > 1 {
                ws.merge_range(first_row, 1, row - 1, 1, level1, &center)?;
            } else {
                ws.write_string(first_row, 1, *level1)?;
            }
        }
    }
    book.save(&out)?;
    println!("wrote {out}");
    Ok(())
}
