"""Matching speed at 1k, 10k and 100k suppliers: ours beside bm25s on the same corpus and queries.

For each catalog size the benchmark generates deterministic synthetic suppliers and demands
(Chinese text composed from the vocabulary lists below and the taxonomy's sub-fields; no data
set is read) and measures, in this order:

- ``build``     seconds to fit the index: ``MatchIndex.build`` for ours; jieba tokenisation
                (search mode, clause-cached as ours is) plus ``bm25s.BM25.index`` for the peer;
- ``rss``       the process's resident memory once the index is built (MiB) and the peak so
                far (``ru_maxrss``); ours is built first, so the peak after it is ours alone;
- ``p50/p99``   in-process latency of one top-10 query over the demands in two forms (full and
                short, as ``bench/relevance.py``), query analysis included on both sides: each
                timed pass starts with no demand's text analysed, and both sides cache the
                clauses they analyse (demands share sentences) within it. Ours
                is ``MatchIndex.rank(demand, "all", 10)``, the peer tokenises with jieba, scores
                with ``BM25.get_scores``, drops suppliers lacking a required certification and
                takes the top ten. bm25s returns ids only, while ours explains every result
                (matched terms, chains, tags, each constraint's effect): the line ``ids`` times
                ours with ``explain=False`` (the same suppliers in the same order, no
                explanations), the like-for-like comparison of the ranking itself;
- ``update``    ``MatchIndex.with_changes`` with 10 suppliers upserted (two of them new, with a
                term and a certification the index has not seen) and one removed, the
                incremental path of the index syncer (no peer: bm25s has no update);
- ``gateway``   p50/p99 of ``POST /v1/match?limit=10`` through the gateway, one client on a
                kept-alive connection: the
                catalog (SQLite in a temporary directory), matching and gateway run as real
                processes on 127.0.0.1 as ``pilotmatch up`` starts them; the suppliers are
                imported with ``POST /v1/import`` in batches of 10,000 with the admin key, and
                the clock starts once ``GET /v1/index`` reports the import's version;
- ``refit``     matching's RSS and peak once one more supplier change has made it refit the
                whole index from scratch while the old one kept serving (the syncer does so
                within a minute of any change): the process's high-water mark in service.

Targets (issue 3) at 100k: build at most 30 s, in-process ranking no slower than bm25s, the
matching process under 1.5 GiB, p99 through the gateway at most 15 ms.

Run from the repository root::

    python bench/latency.py                         # 1k, 10k, 100k (about 10 minutes)
    python bench/latency.py --quick                 # 1k and 10k, fewer queries, no gateway
    python bench/latency.py --sizes 100000 --no-gateway
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import logging
import os
import random
import re
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import bm25s
import jieba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.matching.ranking import (
    STAGES,
    DemandQuery,
    MatchIndex,
    SupplierDoc,
    normalize_certification,
)
from services.shared.taxonomy import Taxonomy, load_taxonomy

ROOT = Path(__file__).resolve().parents[1]
SEED = 20_260_301
BATCH = 10_000  # POST /v1/import takes at most this many items
K = 10

# ------------------------------------------------------------------ vocabulary

DISTRICTS = (
    "松山湖", "滨海湾新区", "东城街道", "南城街道", "莞城街道", "万江街道", "长安镇", "虎门镇",
    "厚街镇", "大朗镇", "大岭山镇", "寮步镇", "塘厦镇", "清溪镇", "凤岗镇", "常平镇", "黄江镇",
    "樟木头镇", "石碣镇", "石龙镇", "茶山镇", "横沥镇", "东坑镇", "企石镇", "桥头镇", "谢岗镇",
    "沙田镇", "麻涌镇", "中堂镇", "高埗镇", "望牛墩镇", "洪梅镇", "道滘镇", "水乡功能区",
)  # fmt: skip
ORG_PREFIXES = ("东莞", "广东", "粤港澳", "华南", "莞深", "湾区", "松湖", "南方", "岭南", "珠江")
ORG_CORES = (
    "华创", "智研", "精工", "新材", "恒达", "科瑞", "联芯", "汇能", "博远", "力拓", "中科", "鼎盛",
    "启明", "天工", "凯越", "宏图", "瑞丰", "铭诚", "晟达", "海纳", "拓普", "锐思", "卓越", "同创",
)  # fmt: skip
PLATFORM_ORG_SUFFIXES = ("研究院", "实验室", "技术研究院", "创新中心", "产业技术研究院", "检测中心")
MAKER_ORG_SUFFIXES = ("科技有限公司", "精密制造有限公司", "实业有限公司", "电子有限公司")
PLATFORM_NAMES = ("中试平台", "中试验证平台", "概念验证中心", "中试基地", "公共技术服务平台",
                  "检测认证中心", "工艺开发实验室", "可靠性实验室")  # fmt: skip
MAKER_NAMES = ("中试代工厂", "试产线", "小批量试产基地", "中试车间", "打样中心", "代工厂")

# Per chain (by canonical name): products or objects, and processes or services, beside the
# taxonomy's own sub-fields. General industry vocabulary, written for this benchmark.
CHAIN_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "新一代电子信息": (
        ("智能手表", "蓝牙耳机", "摄像模组", "柔性电路板", "触控屏", "显示模组", "主板", "充电器",
         "智能音箱", "车载中控屏", "电源适配器", "传感器模组"),
        ("SMT贴片", "整机组装", "功能测试", "老化测试", "跌落测试", "结构设计", "射频调试",
         "防水测试", "外观检测", "EMC预测试", "点胶", "焊接"),
    ),
    "高端装备制造": (
        ("五轴机床", "精密模具", "注塑件", "压铸件", "钣金件", "减速器", "伺服电机", "自动化产线",
         "工业机器人", "无人机机身", "精密轴承", "液压阀"),
        ("CNC加工", "模具开发", "注塑成型", "激光焊接", "3D打印", "尺寸检测", "疲劳试验",
         "装配调试", "表面处理", "热处理", "动平衡测试", "非标设计"),
    ),
    "食品饮料": (
        ("益生菌粉", "植物蛋白饮料", "燕麦奶", "功能饮料", "预制菜", "烘焙食品", "代餐粉", "酵素",
         "调味酱", "冻干水果", "茶饮原液", "特医食品"),
        ("发酵放大", "喷雾干燥", "冷冻干燥", "无菌灌装", "配方开发", "杀菌工艺", "风味评价",
         "货架期测试", "营养成分检测", "微生物检测", "包装验证", "感官评价"),
    ),
    "纺织服装鞋帽": (
        ("功能面料", "运动鞋底", "针织毛衫", "户外冲锋衣", "无缝内衣", "再生纤维纱线", "鞋面",
         "智能服装", "数码印花面料", "防护服", "箱包", "帽饰"),
        ("打版", "小单快反", "数码印花", "无水染色", "发泡成型", "面料检测", "色牢度测试",
         "透湿测试", "版型开发", "样衣制作", "全成型编织", "试穿评估"),
    ),
    "半导体及集成电路": (
        ("功率模块", "碳化硅器件", "MEMS传感器", "射频芯片", "晶圆", "封装基板", "光刻胶",
         "氮化镓器件", "模拟芯片", "存储芯片", "玻璃通孔基板", "Chiplet"),
        ("流片", "晶圆级封装", "键合", "可靠性验证", "失效分析", "晶圆测试", "外延生长",
         "刻蚀工艺", "薄膜沉积", "车规认证", "老化筛选", "版图设计"),
    ),
    "新能源": (
        ("固态电池", "钠离子电池", "储能电池包", "光伏组件", "钙钛矿电池", "燃料电池电堆", "双极板",
         "电解槽", "充电桩", "电池管理系统", "逆变器", "正极材料"),
        ("电芯试制", "化成分容", "安全测试", "循环寿命测试", "热失控测试", "涂布", "叠片",
         "注液", "模组装配", "系统集成", "并网测试", "材料评价"),
    ),
    "新材料": (
        ("改性塑料", "特种陶瓷", "高性能合金", "碳纤维复合材料", "光学膜", "胶粘剂", "电子浆料",
         "磁性材料", "可降解材料", "涂料", "金属粉末", "工程塑料粒子"),
        ("配方开发", "造粒", "挤出成型", "烧结", "材料表征", "力学测试", "热分析", "老化测试",
         "涂层制备", "流变测试", "成分分析", "工艺放大"),
    ),
    "生物医药及高端医疗器械": (
        ("抗体药物", "细胞治疗产品", "体外诊断试剂", "植入器械", "医用导管", "mRNA疫苗", "多肽药物",
         "康复器械", "医用耗材", "手术器械", "原料药", "口服制剂"),
        ("工艺开发", "GMP生产", "无菌灌装", "生物相容性评价", "注册检验", "稳定性研究",
         "分析方法开发", "细胞培养", "纯化工艺", "临床样品制备", "灭菌验证", "质量研究"),
    ),
    "软件与信息服务业": (
        ("工业软件", "MES系统", "数字孪生平台", "AI大模型", "数据中台", "嵌入式软件",
         "网络安全系统", "云平台", "ERP系统", "低代码平台", "边缘网关", "算法模型"),
        ("软件测评", "渗透测试", "系统集成", "数据治理", "模型训练", "性能测试", "等保测评",
         "需求分析", "部署运维", "算力调度", "接口开发", "可用性测试"),
    ),
    "下一代移动通信（6G）": (
        ("毫米波天线", "射频前端模组", "光模块", "滤波器", "小基站", "太赫兹器件", "智能超表面",
         "卫星通信终端", "车联网终端", "通信芯片", "相控阵天线", "微波组件"),
        ("暗室测试", "射频测试", "协议一致性测试", "天线仿真", "OTA测试", "链路验证", "外场测试",
         "信道测量", "互操作测试", "功率放大器调试", "波束测试", "频谱分析"),
    ),
    "前沿新材料": (
        ("石墨烯薄膜", "碳纳米管浆料", "气凝胶毡", "液态金属", "高熵合金", "二维材料", "超材料",
         "金刚石散热片", "形状记忆合金", "钙钛矿薄膜", "量子点", "纳米纤维"),
        ("微纳加工", "器件制备", "化学气相沉积", "材料表征", "中子散射表征", "导热测试",
         "电导率测试", "分散工艺", "转移工艺", "结构表征", "性能评测", "小试放大"),
    ),
    "具身智能": (
        ("灵巧手", "机器人关节", "谐波减速器", "四足机器人", "人形机器人", "力矩传感器", "机械臂",
         "触觉传感器", "巡检机器人", "服务机器人", "行星滚柱丝杠", "遥操作系统"),
        ("运动控制调试", "仿真训练", "数据采集", "整机联调", "可靠性测试", "SLAM建图", "抓取测试",
         "关节标定", "力控测试", "视觉感知评测", "寿命测试", "场景验证"),
    ),
    "未来生命健康": (
        ("类器官", "脑机接口电极", "干细胞制剂", "器官芯片", "合成生物菌株", "可穿戴健康监测设备",
         "基因编辑工具", "组织工程支架", "3D生物打印组织", "微生物组制剂", "数字医疗软件",
         "营养健康产品"),
        ("菌株构建", "发酵验证", "细胞培养", "功效评价", "动物实验", "信号采集测试", "生物打印",
         "质量检测", "临床前研究", "代谢分析", "数据分析", "工艺放大"),
    ),
}  # fmt: skip
CAPABILITY_VERBS = ("提供", "承接", "开展", "支持", "可做")
CAPABILITY_TAILS = ("服务", "", "一站式服务", "全流程服务", "及报告出具")
EQUIPMENT = (
    "扫描电子显微镜", "X射线衍射仪", "高低温试验箱", "盐雾试验箱", "三坐标测量机", "五轴加工中心",
    "激光焊接机", "SMT贴片线", "回流焊炉", "真空镀膜机", "注塑机", "3D打印机", "干法电极辊压机",
    "叠片机", "化成分容设备", "喷雾干燥塔", "冻干机", "发酵罐", "洁净车间", "万能材料试验机",
    "气相色谱仪", "液相色谱仪", "微波暗室", "矢量网络分析仪", "探针台", "引线键合机", "热重分析仪",
    "差示扫描量热仪", "流变仪", "电池充放电测试系统", "振动试验台", "跌落试验机", "光谱仪",
    "生物安全柜", "细胞培养箱", "流式细胞仪", "全自动编织机", "数码印花机", "机器人仿真工作站",
)  # fmt: skip
CERTIFICATIONS = ("CNAS", "CMA", "ISO 9001", "ISO 14001", "ISO 13485", "IATF 16949", "GMP",
                  "ISO 45001", "ISO 27001", "HACCP")  # fmt: skip
SUPPLIER_SENTENCES = (
    "面向{chain}领域，提供从实验室成果到量产之间的{process}与验证服务",
    "拥有{equipment}、{equipment2}等关键设备",
    "可承接{sub}相关的{process}需求",
    "重点服务{object}企业的{process}与{process2}",
    "团队由{number}名工程师组成，具备丰富的{sub}项目经验",
    "已累计服务企业超过{number}家",
    "帮助客户缩短{object}研发周期，降低试错成本",
    "支持{stage}阶段的样品制作与数据采集",
    "出具具有公信力的{process}报告",
    "与高校共建{sub}联合实验室",
    "聚焦{chain}关键共性技术攻关",
    "{object}月产能可达{number}件",
    "可根据客户图纸完成{object}的{process}",
    "具备{sub}方向的{process}能力",
    "产线符合质量体系要求，保障小批量产品的一致性与可追溯性",
    "欢迎有{sub}中试需求的企业预约洽谈",
    "支持使用中试服务券",
    "位于{district}，交通便利",
    "近年完成{object}{process}项目{number}项",
    "配备{equipment}，测试范围覆盖{process}与{process2}",
    "最小起订量{number}件，交期{small}天",
    "可提供{object}的{process}方案设计与工艺优化",
    # Limits, as about a third of real descriptions state them (services.matching.disclaimers).
    "暂不承接{process2}",
    "没有{equipment2}，无法开展{object}的{process2}",
)
DEMAND_TITLES = (
    "{object}{process}", "{sub}{object}中试", "{object}小批量试产", "{object}{process}验证",
    "寻找{object}{process}服务", "{sub}样品{process}", "{object}打样与{process}",
)  # fmt: skip
DEMAND_SENTENCES = (
    "我们正在开发{object}，需要{process}",
    "目前已完成{stage_before}，计划进入{stage}",
    "希望找到具备{equipment}的平台开展{process2}",
    "预计数量{number}件，周期{small}周",
    "产品应用于{sub}领域",
    "要求出具{process}报告",
    "需要对{object}进行{process}和{process2}",
    "希望在{district}附近",
)
SHORT_PROCESSES = tuple(p for _, (__, ps) in CHAIN_WORDS.items() for p in ps)


@dataclass(frozen=True)
class Demand:
    full: DemandQuery
    short: DemandQuery


def generate_suppliers(count: int, taxonomy: Taxonomy, seed: int = SEED) -> list[SupplierDoc]:
    """``count`` suppliers, deterministic for a seed and count (the first ``n`` are the same
    for every count)."""
    rng = random.Random(seed)
    chains = taxonomy.chains
    out: list[SupplierDoc] = []
    for n in range(count):
        platform = rng.random() < 0.45
        picked = rng.sample(chains, rng.choice((1, 1, 1, 2, 2, 3)))
        main = picked[0]
        objects, processes = CHAIN_WORDS[main.name]
        subfields = [t for c in picked for t in c.subfields]
        tags = rng.sample(subfields, min(len(subfields), rng.randint(2, 6)))
        tags += rng.sample(objects, rng.randint(0, 2))
        own = rng.sample(processes, rng.randint(2, 5))
        capabilities = [
            rng.choice(CAPABILITY_VERBS) + p + rng.choice(CAPABILITY_TAILS) for p in own
        ]
        equipment = rng.sample(EQUIPMENT, rng.randint(1, 6))
        stage_count = rng.randint(1, 3)
        first = rng.randrange(len(STAGES) - stage_count + 1)
        stages = STAGES[first : first + stage_count]
        district = rng.choice(DISTRICTS)
        fill = {
            "chain": main.name,
            "sub": tags[0],
            "object": rng.choice(objects),
            "process": own[0],
            "process2": own[-1],
            "equipment": equipment[0],
            "equipment2": equipment[-1],
            "stage": stages[0],
            "district": district,
        }
        sentences = rng.sample(SUPPLIER_SENTENCES, rng.randint(3, 7))
        description = "，".join(
            s.format(number=rng.randint(3, 900), small=rng.randint(3, 30), **fill)
            for s in sentences
        )
        core = rng.choice(ORG_PREFIXES) + rng.choice(ORG_CORES)
        org = core + rng.choice(PLATFORM_ORG_SUFFIXES if platform else MAKER_ORG_SUFFIXES)
        suffix = rng.choice(PLATFORM_NAMES if platform else MAKER_NAMES)
        out.append(
            SupplierDoc(
                id=f"{'p' if platform else 'm'}-{n:07d}",
                kind="platform" if platform else "manufacturer",
                name=f"{core}{tags[0]}{suffix}",
                organization=org,
                district=district,
                description=description + "。",
                industry_chains=tuple(c.name for c in picked),
                tags=tuple(dict.fromkeys(tags)),
                capabilities=tuple(capabilities),
                equipment=tuple(equipment),
                certifications=tuple(rng.sample(CERTIFICATIONS, rng.choice((0, 0, 1, 1, 2, 3)))),
                stages=stages,
                accepts_vouchers=rng.random() < 0.6,
                level=rng.choice((None, None, "市级", "省级", "国家级")),
            )
        )
    return out


def generate_demands(count: int, taxonomy: Taxonomy, seed: int = SEED + 1) -> list[Demand]:
    rng = random.Random(seed)
    out: list[Demand] = []
    for _ in range(count):
        chain = rng.choice(taxonomy.chains)
        objects, processes = CHAIN_WORDS[chain.name]
        tags = rng.sample(chain.subfields, rng.randint(1, 3))
        stage = rng.choice((None, *STAGES))
        before = STAGES[max(0, STAGES.index(stage) - 1)] if stage else "小试"
        fill = {
            "sub": tags[0],
            "object": rng.choice(objects),
            "process": rng.choice(processes),
            "process2": rng.choice(SHORT_PROCESSES),
            "equipment": rng.choice(EQUIPMENT),
            "stage": stage or "中试",
            "stage_before": before,
            "district": rng.choice(DISTRICTS),
            "number": rng.randint(10, 5000),
            "small": rng.randint(1, 12),
        }
        title = rng.choice(DEMAND_TITLES).format(**fill)
        description = "，".join(
            s.format(**fill) for s in rng.sample(DEMAND_SENTENCES, rng.randint(2, 5))
        )
        full = DemandQuery(
            title=title,
            description=description + "。",
            industry_chains=(chain.name,) if rng.random() < 0.8 else (),
            tags=tuple(tags),
            stage=stage,
            district=fill["district"] if rng.random() < 0.3 else None,
            needs_voucher=rng.random() < 0.3,
            required_certifications=(rng.choice(CERTIFICATIONS),) if rng.random() < 0.15 else (),
        )
        out.append(Demand(full=full, short=replace(full, description=title)))
    return out


# ------------------------------------------------------------------ in-process


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    values = np.asarray(samples) * 1000
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def timed(
    run: Callable[[DemandQuery], Any],
    queries: Sequence[DemandQuery],
    cold: Callable[[], None],
) -> list[float]:
    """Seconds per query. After a warm-up (code paths, the ranker's own structures),
    ``cold`` forgets the analysed text, so that each pass starts with no query's text
    analysed, for both rankers alike; within a pass both cache clauses."""
    for q in queries[: min(20, len(queries))]:  # warm-up
        run(q)
    cold()
    out = []
    for q in queries:
        started = time.perf_counter()
        run(q)
        out.append(time.perf_counter() - started)
    return out


def changes(suppliers: Sequence[SupplierDoc]) -> tuple[list[SupplierDoc], list[str]]:
    """Ten upserts (eight edits, two new suppliers with an unseen term and certification) and
    one removal."""
    edited = [replace(s, name=s.name + "（扩建）", accepts_vouchers=not s.accepts_vouchers)
              for s in suppliers[1:9]]  # fmt: skip
    new = [
        replace(
            suppliers[i],
            id=f"new-{i}",
            tags=(*suppliers[i].tags, "钽电容微型化"),
            certifications=("ISO 10993",),
        )
        for i in (10, 11)
    ]
    return edited + new, [suppliers[0].id]


def bm25_peer(
    suppliers: Sequence[SupplierDoc],
) -> tuple[Callable[[DemandQuery], list[int]], Callable[[], None]]:
    """(top ten, forget the cached clauses): bm25s over jieba search-mode tokens, as
    bench/relevance.py, clause-cached as our analyzer is, so that both builds and both
    query passes pay for each distinct clause once."""
    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    cache: dict[str, list[str]] = {}
    split = re.compile(r"(?<=[，。；])")

    def tokens(text: str) -> list[str]:
        return [t for t in tokenizer.cut_for_search(text.lower()) if t.strip() and t.isalnum()]

    def cached(text: str) -> list[str]:
        out: list[str] = []
        for part in split.split(text):
            hit = cache.get(part)
            if hit is None:
                hit = cache[part] = tokens(part)
            out.extend(hit)
        return out

    fields = ("name", "organization", "industry_chains", "tags", "capabilities", "equipment")
    corpus = []
    for s in suppliers:
        parts = [getattr(s, f) for f in fields]
        text = " ".join(p if isinstance(p, str) else " ".join(p) for p in parts)
        corpus.append(cached(text + " " + s.description))
    cache.clear()
    retriever = bm25s.BM25()
    retriever.index(corpus, show_progress=False)
    del corpus
    certs = [{normalize_certification(c) for c in s.certifications} for s in suppliers]

    def top(q: DemandQuery) -> list[int]:
        text = " ".join((q.title, " ".join(q.industry_chains), " ".join(q.tags), q.description))
        scores = np.asarray(retriever.get_scores(cached(text)), dtype=np.float64)
        required = {normalize_certification(c) for c in q.required_certifications} - {""}
        if required:
            ok = np.fromiter((required <= c for c in certs), dtype=bool, count=len(certs))
            scores[~ok] = -np.inf
        best = np.argpartition(-scores, min(K, len(scores) - 1))[:K]
        return sorted(best.tolist(), key=lambda i: -scores[i])

    return top, cache.clear


@dataclass
class Row:
    size: int
    build: float
    rss: float
    peak: float
    p50: float
    p99: float
    update_ms: float | None = None
    gateway: tuple[float, float] | None = None
    matching_rss: tuple[float, float] | None = None
    rebuild_rss: tuple[float, float] | None = None  # matching after a refit while serving
    ids_only: tuple[float, float] | None = None  # p50/p99 ms of ours without explanations


def update_ms(index: MatchIndex, suppliers: Sequence[SupplierDoc]) -> float:
    """Median milliseconds of ``with_changes`` for the changes above, over five runs."""
    upserts, deletes = changes(suppliers)
    spent = []
    for _ in range(5):
        started = time.perf_counter()
        index.with_changes(upserts, deletes)
        spent.append(time.perf_counter() - started)
    return float(np.median(spent)) * 1000


def in_process(size: int, taxonomy: Taxonomy, n_demands: int) -> tuple[Row, Row]:
    suppliers = generate_suppliers(size, taxonomy)
    demands = generate_demands(n_demands, taxonomy)
    queries = [d.full for d in demands] + [d.short for d in demands]
    gc.collect()
    base = rss_mib()
    started = time.perf_counter()
    index = MatchIndex.build(suppliers, taxonomy)
    build = time.perf_counter() - started
    gc.collect()
    cold = index.clear_text_cache
    ours = Row(size, build, rss_mib() - base, peak_mib(), *percentiles(timed(
        lambda q: index.rank(q, "all", K), queries, cold)))  # fmt: skip
    ours.ids_only = percentiles(
        timed(lambda q: index.rank(q, "all", K, explain=False), queries, cold)
    )
    ours.update_ms = update_ms(index, suppliers)
    index = None  # type: ignore[assignment]
    gc.collect()
    base = rss_mib()
    started = time.perf_counter()
    top, peer_cold = bm25_peer(suppliers)
    build = time.perf_counter() - started
    gc.collect()
    peer = Row(
        size, build, rss_mib() - base, peak_mib(), *percentiles(timed(top, queries, peer_cold))
    )
    return ours, peer


# ------------------------------------------------------------------ through the gateway


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(url: str, key: str, body: Any = None, timeout: float = 300.0) -> Any:
    data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    request.add_header("X-API-Key", key)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {what}")


def import_item(doc: SupplierDoc) -> dict[str, Any]:
    return {
        "external_ref": doc.id,
        "name": doc.name,
        "organization": doc.organization,
        "district": doc.district,
        "description": doc.description,
        "industry_chains": list(doc.industry_chains),
        "tags": list(doc.tags),
        "capabilities": list(doc.capabilities),
        "equipment": list(doc.equipment),
        "certifications": list(doc.certifications),
        "stages": list(doc.stages),
        "accepts_vouchers": doc.accepts_vouchers,
        "level": doc.level,
    }


def demand_body(q: DemandQuery) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": q.title,
        "description": q.description,
        "industry_chains": list(q.industry_chains),
        "tags": list(q.tags),
        "needs_voucher": q.needs_voucher,
        "required_certifications": list(q.required_certifications),
    }
    if q.stage:
        body["stage"] = q.stage
    if q.district:
        body["district"] = q.district
    return body


def proc_memory(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


@contextmanager
def services(workdir: Path) -> Iterator[tuple[dict[str, str], Callable[[str], int], str]]:
    """The three services as ``pilotmatch up`` starts them; yields (urls, start, admin key):
    catalog and gateway are running, ``start("matching")`` starts matching (after the
    import, so that it builds the whole index on start) and returns its pid."""
    key = secrets.token_urlsafe(32)
    ports = {name: free_port() for name in ("catalog", "matching", "gateway")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"sqlite:///{workdir / 'catalog.db'}",
        CATALOG_URL=urls["catalog"],
        MATCHING_URL=urls["matching"],
        PILOTMATCH_ADMIN_KEY=key,
        LOG_LEVEL="WARNING",
        RATE_LIMIT_PER_MINUTE="10000000",
        PYTHONPATH=str(ROOT),
    )
    cli = [sys.executable, "-m", "services.cli"]
    subprocess.run([*cli, "migrate"], env=env, cwd=ROOT, check=True, capture_output=True)
    children: list[subprocess.Popen[bytes]] = []
    log = open(workdir / "services.log", "wb")  # noqa: SIM115 - closed below

    def start(name: str) -> int:
        command = [*cli, "serve", name, "--port", str(ports[name]), "--host", "127.0.0.1"]
        child = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=log)
        children.append(child)
        return child.pid

    try:
        start("catalog")
        start("gateway")
        wait_until(lambda: call(urls["catalog"] + "/healthz", key) is not None, 60, "catalog")
        yield urls, start, key
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        log.close()


def through_gateway(
    suppliers: Sequence[SupplierDoc], queries: Sequence[DemandQuery], rounds: int
) -> tuple[tuple[float, float], tuple[float, float], float, float | None, tuple[float, float]]:
    """((p50, p99) of POST /v1/match?limit=10, matching's (RSS, peak) MiB, seconds from
    the matching process's start to an index holding the whole import, the seconds of its
    full build as ``GET /v1/index`` reports them, and matching's (RSS, peak) MiB after one
    more supplier change made it refit the whole index while the old one kept serving)."""
    workdir = Path(tempfile.mkdtemp(prefix="pilotmatch-latency-"))
    try:
        with services(workdir) as (urls, start, key):
            gateway = urls["gateway"]
            version = 0
            for i in range(0, len(suppliers), BATCH):
                batch = suppliers[i : i + BATCH]
                body = {
                    "platforms": [import_item(s) for s in batch if s.kind == "platform"],
                    "manufacturers": [import_item(s) for s in batch if s.kind == "manufacturer"],
                }
                version = call(gateway + "/v1/import", key, body)["version"]
            started = time.monotonic()
            pid = start("matching")
            wait_until(
                lambda: call(gateway + "/v1/index", key)["version"] >= version,
                900,
                "the matching index",
            )
            ready = time.monotonic() - started
            service_build = call(gateway + "/v1/index", key).get("last_build_seconds")
            # One client on one kept-alive connection, as an application's HTTP pool does.
            bodies = [json.dumps(demand_body(q), ensure_ascii=False).encode() for q in queries]
            connection = http.client.HTTPConnection("127.0.0.1", int(gateway.rsplit(":", 1)[1]))
            headers = {"X-API-Key": key, "Content-Type": "application/json"}

            def match(body: bytes) -> None:
                connection.request("POST", "/v1/match?limit=10", body, headers)
                response = connection.getresponse()
                payload = response.read()
                if response.status != 200:
                    raise RuntimeError(f"POST /v1/match: {response.status} {payload[:200]!r}")

            for body in bodies[:20]:
                match(body)
            spent = []
            for _ in range(rounds):
                for body in bodies:
                    t = time.perf_counter()
                    match(body)
                    spent.append(time.perf_counter() - t)
            connection.close()
            memory = proc_memory(pid)
            # The syncer refits from scratch after changes (within its rebuild interval), and
            # the index in service stays until the new one replaces it: the process's real
            # high-water mark.
            builds = call(gateway + "/v1/index", key)["full_builds"]
            edited = replace(suppliers[0], name=suppliers[0].name + "（更新）")
            kind = "platforms" if edited.kind == "platform" else "manufacturers"
            call(gateway + "/v1/import", key, {kind: [import_item(edited)]})
            wait_until(
                lambda: call(gateway + "/v1/index", key)["full_builds"] > builds,
                600,
                "a full rebuild after a change",
            )
            return percentiles(spent), memory, ready, service_build, proc_memory(pid)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# ------------------------------------------------------------------ report


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="catalog sizes")
    parser.add_argument("--demands", type=int, default=100, help="demands (two forms each)")
    parser.add_argument("--quick", action="store_true", help="1k and 10k, 40 demands, no gateway")
    parser.add_argument("--no-gateway", action="store_true", help="skip the gateway runs")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the demands (gateway)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    n_demands, gateway = args.demands, not args.no_gateway
    if args.quick:
        sizes, n_demands, gateway = [s for s in sizes if s <= 10_000] or [1000], 40, False
    taxonomy = load_taxonomy()
    print(f"{n_demands} demands x 2 forms, top {K}; cores: {os.cpu_count()}", flush=True)
    rows: list[tuple[Row, Row]] = []
    for size in sorted(sizes):
        ours, peer = in_process(size, taxonomy, n_demands)
        if gateway:
            demands = generate_demands(n_demands, taxonomy)
            queries = [d.full for d in demands] + [d.short for d in demands]
            suppliers = generate_suppliers(size, taxonomy)
            ours.gateway, ours.matching_rss, ready, built, ours.rebuild_rss = through_gateway(
                suppliers, queries, args.rounds
            )
            print(f"  {size}: matching process ready {ready:.1f}s after its start "
                  f"(its index build: {built}s)", flush=True)  # fmt: skip
        rows.append((ours, peer))
        print(f"  {size}: done", flush=True)
    print()
    print("size     ranker  build s  index MiB  peak MiB  p50 ms  p99 ms  update ms  "
          "gateway p50/p99 ms  matching RSS/peak MiB")  # fmt: skip
    for ours, peer in rows:
        for name, row in (("ours", ours), ("bm25s", peer)):
            update = f"{row.update_ms:9.1f}" if row.update_ms is not None else f"{'-':>9}"
            via = f"{row.gateway[0]:7.2f} / {row.gateway[1]:6.2f}" if row.gateway else "-"
            mem = (
                f"{row.matching_rss[0]:6.0f} / {row.matching_rss[1]:6.0f}"
                if row.matching_rss
                else "-"
            )
            print(f"{row.size:<8} {name:<6} {row.build:8.1f} {row.rss:10.0f} {row.peak:9.0f} "
                  f"{row.p50:7.2f} {row.p99:7.2f} {update}  {via:>18}  {mem:>21}")  # fmt: skip
        print(f"{'':8} ratio  {ours.build / peer.build:8.2f} {'':10} {'':9} "
              f"{ours.p50 / peer.p50:7.2f} {ours.p99 / peer.p99:7.2f}   (ours / bm25s)")  # fmt: skip
        if ours.ids_only:
            p50, p99 = ours.ids_only
            print(f"{'':8} ids    {'':8} {'':10} {'':9} {p50:7.2f} {p99:7.2f}   "
                  f"ours without explanations; ratio {p50 / peer.p50:.2f} / "
                  f"{p99 / peer.p99:.2f}")  # fmt: skip
        if ours.rebuild_rss:
            rss, peak = ours.rebuild_rss
            print(f"{'':8} refit  {'':8} {'':10} {'':9} {'':7} {'':7} {'':9}  {'':>18}  "
                  f"{rss:6.0f} / {peak:6.0f}   matching after a full refit while serving")  # fmt: skip


if __name__ == "__main__":
    main()
