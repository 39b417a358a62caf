"""Text analysis for matching: Chinese and English in one token stream.

``Analyzer.analyze`` turns a text into index terms:

1. **Normalise**: NFKC (full-width letters and punctuation become ASCII), traditional to
   simplified Chinese (OpenCC ``t2s``), lower case.
2. **Clauses**: the text is cut at punctuation and each clause is analysed once and cached, so
   a catalog whose suppliers share phrases (tags, capabilities, boiler-plate sentences) pays the
   segmentation cost once per distinct phrase, not once per supplier.
3. **Chinese words**: jieba in search mode (long words also yield their dictionary sub-words),
   on a private ``jieba.Tokenizer`` whose dictionary holds the domain terms passed in (the
   taxonomy's chain names, aliases and sub-fields, the catalog's tags and short capabilities).
   Single characters are dropped when they sit inside a longer Chinese run: they are particles
   (的, 和, 及) far more often than content.
4. **Chinese character bigrams**, prefixed with ``BIGRAM_PREFIX``, for every Chinese run, so that
   compounds the dictionary does not know (硫化物电解质, 腱绳驱动) still match on their parts;
   none holds a particle of ``BIGRAM_BREAKS`` (后的 is no compound).
5. **English and code words** (``[a-z0-9]+``, with a dotted numeric tail such as ``un38.3``):
   lower-cased; plain words are stemmed with the Snowball English stemmer (prototypes ->
   prototyp) unless they are abbreviations: a word written with two or more capitals in the
   original (SiC, MEMS, AiP, PCBA), a word in ``ABBREVIATIONS``, or one of the domain terms, is
   kept whole so that ``MEMS`` does not become ``mem``; in a clause typed all in capitals only
   the short words count as marked (``SHOUTED_ABBREVIATION_MAX``). Numbers of fewer than four digits
   (quantities) are dropped, longer ones (standards such as 9001, 62619) kept; common English and
   Chinese function words (``ENGLISH_STOP_WORDS``, ``CHINESE_STOP_WORDS``) are dropped.
6. **English glossary**: an English word or phrase of ``ENGLISH_GLOSSARY`` (matched on stems)
   also emits the Chinese term's words and bigrams, so that an English demand ("anodizing",
   "antenna") meets a Chinese catalog (阳极氧化, 天线) and vice versa. The glossary is general
   manufacturing and pilot-test vocabulary across the 13 chains, not a list of any catalog's terms.
7. **Synonyms** (``synonyms``: alias -> canonical term, the taxonomy's sub-field aliases and the
   process vocabulary of ``services.matching.vocabulary``): an
   alias in a text also emits the canonical term's words, so that 抗蚀剂, 光阻 and "photoresist" meet
   光刻胶, and 线路板 meets 印制电路板. Chinese (and mixed, IC设计) aliases are dictionary words,
   so they segment whole, and only a whole word counts: the 锂电 inside 锂电设备 is a part of
   another word, not a mention of the battery. English aliases are phrases, matched like the
   glossary's (a glossary word that is itself an alias, 电路板, expands too). The expansion is
   the same for suppliers and demands, so both sides meet on the canonical words and cosine
   stays a comparison of like with like. A canonical term is emitted once per clause, however
   many of its aliases the clause holds, and only the words of it that the clause lacks (IC设计
   adds 芯片 and 芯片设计, not a second 设计; PCB印制电路板 adds nothing), so an alias weighs
   about what its canonical term would. There is no separate weight for expanded words (that
   would need the ranker to tell them apart); sublinear term frequency already makes a repeated
   word worth less. The canonical term's character bigrams are left out by default
   (``synonym_bigrams``; see ``DEFAULT_SYNONYM_BIGRAMS`` for the measurement).

The analyzer is deterministic and holds no global state: jieba's global tokenizer is never
touched. The base dictionary of jieba (about 0.5 M prefixes, ~1 s to build) is built once per
process and copied into each analyzer (~20 ms).
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import multiprocessing
import re
import sys
import threading
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

import jieba
import opencc
import snowballstemmer

from services.matching.markup import plain_text

__all__ = [
    "ABBREVIATIONS",
    "BIGRAM_PREFIX",
    "CHINESE_STOP_WORDS",
    "DEFAULT_SYNONYM_BIGRAMS",
    "ENGLISH_GLOSSARY",
    "ENGLISH_STOP_WORDS",
    "Analyzer",
    "WorkerPool",
    "is_bigram",
]

BIGRAM_PREFIX = "~"
"""Marks a Chinese character bigram (``~芯片``) so it never collides with a jieba word."""

BIGRAM_BREAKS = frozenset("的了和及与或")
"""Particles that make no bigram: a pair holding one (后的, 池和) spans a word boundary, an
accidental pair that matched unrelated texts and showed up among the matched and disclaimed
terms. Words holding them (了解, 参与) are jieba's, not bigrams'. On the development set
nDCG@10 moves by +0.0006 (full form) and 0.0000 (short)."""

DOMAIN_WORD_FREQ = 20_000
"""jieba frequency given to domain terms: high enough that the dynamic programme keeps a term
whole rather than splitting it into common words, as jieba's own ``suggest_freq`` would."""

MAX_DOMAIN_TERM_CHARS = 12
"""Longer catalog phrases are not added to the dictionary: a whole capability sentence as one
word would hide its parts (search mode only re-emits 2- and 3-character sub-words)."""

CACHE_SIZE = 1 << 16
"""Distinct clauses whose analysis is kept per analyzer: those of several thousand demands
(about 20 MiB when full, its terms interned). The matching process keeps it for as long as it
runs, beside the index and, during a refit, a second one: a larger cache would eat the
memory margin of a 100k-supplier index."""

DEFAULT_SYNONYM_BIGRAMS = False
"""Whether a synonym's expansion also emits the canonical term's character bigrams. Measured
with bench/relevance.py (nDCG@10, full / short form): words only 0.9155 / 0.9080, words and
bigrams 0.9157 / 0.9079, no synonyms 0.9140 / 0.9048. The bigrams add nothing the words do not
already bring, so they are left out (fewer postings per expanded term)."""

Phrase = tuple[str, ...]
Target = tuple[str, bool]
"""What an English phrase emits: a glossary term (False: its Chinese words and bigrams) or a
canonical term of the synonyms (True: expanded as in 7.)."""

ABBREVIATIONS: frozenset[str] = frozenset(
    {
        "tgv", "cgt", "smt", "sic", "gan", "mems", "agv", "amr", "pcba", "pcb", "fpc", "gmp",
        "ivd", "cdmo", "cro", "oem", "odm", "ems", "cnc", "mes", "erp", "bms", "pcs", "hil",
        "led", "oled", "lcd", "mpw", "eda", "soc", "fpga", "asic", "igbt", "mosfet", "hemt",
        "cnas", "cma", "iso", "iatf", "ul", "ce", "fcc", "rohs", "reach", "haccp", "sc", "aoi",
        "bga", "qfn", "dfn", "sop", "rdl", "cob", "ris", "ota", "aip", "eirp", "mimo", "rf",
        "ltcc", "lds", "lcp", "hdi", "mim", "pvd", "cvd", "ald", "uv", "ir", "xrd", "sem",
        "tem", "ai", "ar", "vr", "xr", "iot", "plc", "cae", "cad", "cam", "slam", "ip", "emc",
        "esd", "tws", "ppg", "ecg", "eeg", "bci", "mrna", "uht", "pet", "pp", "pe", "abs",
        "pla", "pbat", "tpu", "tpe", "eva", "lsr", "pi", "pdms", "cnt", "nev", "ev", "dfm",
        "dfx", "npi", "evt", "dvt", "pvt", "sla", "sls", "mjf", "fdm", "dlp", "lidar",
    }
)  # fmt: skip
"""Lower-cased abbreviations never stemmed (besides words written with two capitals)."""

SHOUTED_ABBREVIATION_MAX = 4
"""In a clause written all in capitals, the longest word its capitals still mark as an
abbreviation (CNAS, PCBA); a longer one (RELIABILITY) is read as a plain word."""

# English term (plain words, matched after stemming) -> Chinese equivalents. General vocabulary
# of pilot testing and manufacturing across the chains of the taxonomy.
ENGLISH_GLOSSARY: Mapping[str, tuple[str, ...]] = {
    # stages, services, scale
    "pilot": ("中试",),
    "pilot test": ("中试",),
    "pilot line": ("中试线",),
    "scale up": ("放大", "工艺放大"),
    "proof of concept": ("概念验证",),
    "feasibility": ("可行性",),
    "prototype": ("样机", "手板", "打样"),
    "prototyping": ("样机", "手板", "打样"),
    "sample": ("样品", "打样"),
    "samples": ("样品", "打样"),
    "small batch": ("小批量",),
    "low volume": ("小批量",),
    "trial production": ("试产",),
    "trial run": ("试产",),
    "mass production": ("量产",),
    "contract manufacturing": ("代工",),
    "contract manufacturer": ("代工",),
    "foundry": ("代工", "流片"),
    "oem": ("代工",),
    "assembly": ("组装", "装配"),
    "assemble": ("组装", "装配"),
    "testing": ("测试", "检测"),
    "test": ("测试",),
    "tests": ("测试",),
    "inspection": ("检测",),
    "certification": ("认证",),
    "validation": ("验证",),
    "verification": ("验证",),
    "reliability": ("可靠性",),
    "lifetime": ("寿命",),
    "life test": ("寿命测试",),
    "durability": ("耐久", "寿命"),
    "fatigue": ("疲劳",),
    "failure analysis": ("失效分析",),
    "characterization": ("表征",),
    "simulation": ("仿真",),
    "process development": ("工艺开发",),
    "process": ("工艺",),
    "formulation": ("配方",),
    "recipe": ("配方",),
    "yield": ("良率",),
    "quality": ("质量",),
    "traceability": ("追溯",),
    "design": ("设计",),
    "industrial design": ("工业设计",),
    "third party": ("第三方",),
    "laboratory": ("实验室",),
    "lab": ("实验室",),
    "voucher": ("服务券",),
    "vibration": ("振动",),
    "humidity": ("湿度", "湿热"),
    "damp heat": ("湿热",),
    "aging": ("老化",),
    "ageing": ("老化",),
    "tensile": ("拉伸",),
    "hardness": ("硬度",),
    "wear resistance": ("耐磨",),
    "abrasion resistance": ("耐磨",),
    "scratch": ("划痕",),
    "adhesion": ("附着力",),
    "peel strength": ("剥离强度",),
    "friction": ("摩擦",),
    "flammability": ("燃烧性能",),
    "measurement": ("测量",),
    "metrology": ("计量", "测量"),
    "calibration": ("校准",),
    "nondestructive testing": ("无损检测",),
    "dustproof": ("防尘",),
    "defect": ("缺陷",),
    "defects": ("缺陷",),
    "failure": ("失效",),
    "performance test": ("性能测试",),
    "stress test": ("压力测试",),
    # electronics
    "electronics": ("电子",),
    "pcb": ("电路板",),
    "printed circuit board": ("印制电路板", "电路板"),
    "circuit board": ("电路板",),
    "flexible circuit": ("柔性线路板",),
    "smt": ("贴片",),
    "surface mount": ("贴片",),
    "soldering": ("焊接",),
    "camera module": ("摄像模组",),
    "camera": ("摄像头",),
    "lens": ("镜头",),
    "optical": ("光学",),
    "display": ("显示",),
    "backlight": ("背光",),
    "touch": ("触控",),
    "sensor": ("传感器",),
    "sensors": ("传感器",),
    "tactile": ("触觉",),
    "wearable": ("可穿戴", "穿戴"),
    "smart watch": ("智能手表",),
    "earbuds": ("耳机",),
    "headset": ("耳机",),
    "speaker": ("音箱",),
    "battery": ("电池",),
    "charging": ("充电",),
    "waterproof": ("防水",),
    "sweat": ("汗液",),
    "corrosion": ("腐蚀",),
    "salt spray": ("盐雾",),
    "enclosure": ("外壳",),
    "housing": ("外壳",),
    "shell": ("外壳",),
    "connector": ("连接器",),
    "home appliance": ("家电",),
    "appliance": ("家电",),
    "firmware": ("固件",),
    "embedded": ("嵌入式",),
    "drone": ("无人机",),
    "uav": ("无人机",),
    "flight test": ("试飞",),
    "flight control": ("飞控",),
    "electronic skin": ("电子皮肤",),
    "flexible": ("柔性",),
    "printed electronics": ("印刷电子",),
    "mobile phone": ("手机",),
    "phone": ("手机",),
    "laptop": ("笔记本电脑",),
    "power bank": ("移动电源", "充电宝"),
    "keyboard": ("键盘",),
    "adapter": ("适配器",),
    "cable": ("线缆",),
    "wire harness": ("线束",),
    "harness": ("线束",),
    "capacitor": ("电容",),
    "resistor": ("电阻",),
    "inductor": ("电感",),
    "heat dissipation": ("散热",),
    "cooling": ("散热", "冷却"),
    "dispensing": ("点胶",),
    "potting": ("灌封",),
    # communications
    "antenna": ("天线",),
    "radar": ("雷达",),
    "mmwave": ("毫米波",),
    "millimeter wave": ("毫米波",),
    "millimetre wave": ("毫米波",),
    "terahertz": ("太赫兹",),
    "radio frequency": ("射频",),
    "rf": ("射频",),
    "anechoic chamber": ("微波暗室", "暗室"),
    "anechoic": ("暗室",),
    "radiation pattern": ("方向图",),
    "filter": ("滤波器",),
    "base station": ("基站",),
    "wireless": ("无线",),
    "metasurface": ("超表面",),
    "beamforming": ("波束赋形",),
    "satellite": ("卫星",),
    "optical module": ("光模块",),
    "dielectric": ("介电", "介质"),
    "ceramic": ("陶瓷",),
    "ceramics": ("陶瓷",),
    "optical fiber": ("光纤",),
    "fiber optic": ("光纤",),
    "phased array": ("相控阵",),
    "signal integrity": ("信号完整性",),
    "high frequency": ("高频",),
    "high speed": ("高速",),
    "positioning": ("定位",),
    # semiconductors
    "semiconductor": ("半导体",),
    "chip": ("芯片",),
    "chips": ("芯片",),
    "wafer": ("晶圆",),
    "tape out": ("流片",),
    "tapeout": ("流片",),
    "packaging": ("封装",),
    "package": ("封装",),
    "advanced packaging": ("先进封装",),
    "power module": ("功率模块",),
    "power device": ("功率器件",),
    "silicon carbide": ("碳化硅",),
    "gallium nitride": ("氮化镓",),
    "epitaxy": ("外延",),
    "epitaxial": ("外延",),
    "lithography": ("光刻",),
    "photoresist": ("光刻胶",),
    "etching": ("刻蚀",),
    "integrated circuit": ("集成电路",),
    "chip design": ("芯片设计",),
    "automotive": ("车规", "汽车"),
    "automotive grade": ("车规",),
    "sintering": ("烧结",),
    "wire bonding": ("键合",),
    "deposition": ("沉积",),
    "annealing": ("退火",),
    "doping": ("掺杂",),
    "dicing": ("划片",),
    "probe card": ("探针卡",),
    "die attach": ("固晶",),
    # equipment, machining, robotics
    "machining": ("加工", "机加工"),
    "cnc machining": ("数控加工", "CNC加工"),
    "milling": ("铣削",),
    "machine tool": ("机床",),
    "mold": ("模具",),
    "mould": ("模具",),
    "tooling": ("模具", "治具"),
    "injection molding": ("注塑",),
    "injection moulding": ("注塑",),
    "mold flow": ("模流分析",),
    "moldflow": ("模流分析",),
    "die casting": ("压铸",),
    "stamping": ("冲压",),
    "sheet metal": ("钣金",),
    "welding": ("焊接",),
    "laser": ("激光",),
    "3d printing": ("3D打印",),
    "3d printed": ("3D打印",),
    "additive manufacturing": ("增材制造", "3D打印"),
    "anodizing": ("阳极氧化",),
    "anodized": ("阳极氧化",),
    "anodising": ("阳极氧化",),
    "anodised": ("阳极氧化",),
    "bead blasting": ("喷砂",),
    "sandblasting": ("喷砂",),
    "surface treatment": ("表面处理",),
    "surface finishing": ("表面处理",),
    "coating": ("涂层",),
    "plating": ("电镀",),
    "polishing": ("抛光",),
    "automation": ("自动化",),
    "fixture": ("治具", "工装"),
    "jig": ("治具",),
    "robot": ("机器人",),
    "robotic": ("机器人",),
    "robotics": ("机器人",),
    "humanoid": ("人形机器人",),
    "dexterous hand": ("灵巧手",),
    "gripper": ("夹爪",),
    "reducer": ("减速器",),
    "gearbox": ("减速器",),
    "servo": ("伺服",),
    "motor": ("电机",),
    "actuator": ("关节模组", "执行器"),
    "joint module": ("关节模组",),
    "machine vision": ("机器视觉",),
    "vision inspection": ("视觉检测",),
    "defect detection": ("缺陷检测",),
    "navigation": ("导航",),
    "logistics": ("物流",),
    "warehouse": ("仓储",),
    "conveyor": ("输送线",),
    "production line": ("产线",),
    "packaging line": ("包装线",),
    "painting": ("喷漆", "涂装"),
    "spraying": ("喷涂",),
    "spray coating": ("喷涂",),
    "forging": ("锻造",),
    "casting": ("铸造",),
    "grinding": ("磨削",),
    "drilling": ("钻孔",),
    "cutting": ("切割",),
    "laser cutting": ("激光切割",),
    "bending": ("折弯",),
    "riveting": ("铆接",),
    "heat treatment": ("热处理",),
    "quenching": ("淬火",),
    "extrusion": ("挤出",),
    "lamination": ("层压", "贴合"),
    "curing": ("固化",),
    "printing": ("印刷",),
    "cleaning": ("清洗",),
    "drying": ("干燥",),
    "granulation": ("造粒",),
    "exoskeleton": ("外骨骼",),
    "quadruped": ("四足",),
    "manipulator": ("机械臂",),
    "mobile robot": ("移动机器人",),
    "autonomous driving": ("自动驾驶",),
    "hydraulic": ("液压",),
    "pneumatic": ("气动",),
    "bearing": ("轴承",),
    "gear": ("齿轮",),
    "valve": ("阀门",),
    "pump": ("泵",),
    "compressor": ("压缩机",),
    "grasp": ("抓取",),
    "grasping": ("抓取",),
    "tendon": ("腱绳",),
    "fingertip": ("指尖",),
    "force control": ("力控",),
    "torque": ("扭矩", "力矩"),
    "payload": ("负载", "载重"),
    "encoder": ("编码器",),
    "harmonic reducer": ("谐波减速器",),
    "harmonic drive": ("谐波减速器",),
    "repeatability": ("重复定位精度",),
    "backlash": ("回差",),
    "stiffness": ("刚度",),
    "gait": ("步态",),
    "teleoperation": ("遥操作",),
    "obstacle avoidance": ("避障",),
    "path planning": ("路径规划",),
    "dispatching": ("调度",),
    "scenario": ("场景",),
    "scene": ("场景",),
    "field test": ("实地测试", "场景验证"),
    "data collection": ("数据采集",),
    "system integration": ("系统集成",),
    "elevator": ("电梯",),
    "temperature rise": ("温升",),
    "mold trial": ("试模",),
    "mould trial": ("试模",),
    "mold modification": ("改模",),
    "warpage": ("翘曲",),
    "sink mark": ("缩痕",),
    "weld line": ("熔接痕",),
    "cooling channel": ("冷却水路",),
    "image sensor": ("图像传感器",),
    "active alignment": ("主动对准",),
    "defocus": ("离焦",),
    # software
    "software": ("软件",),
    "digital twin": ("数字孪生",),
    "virtual commissioning": ("虚拟调试",),
    "commissioning": ("调试",),
    "industrial software": ("工业软件",),
    "industrial internet": ("工业互联网",),
    "data acquisition": ("数据采集",),
    "scheduling": ("排产", "调度"),
    "machine learning": ("机器学习",),
    "deep learning": ("深度学习",),
    "artificial intelligence": ("人工智能",),
    "algorithm": ("算法",),
    "cybersecurity": ("网络安全",),
    "penetration test": ("渗透测试",),
    "cloud": ("云",),
    "edge computing": ("边缘计算",),
    "gateway": ("网关",),
    "speech recognition": ("语音识别",),
    "data security": ("数据安全",),
    "privacy": ("隐私",),
    "compliance": ("合规",),
    # energy
    "battery cell": ("电芯",),
    "cell": ("电芯",),
    "pouch cell": ("软包电芯",),
    "battery pack": ("电池包", "PACK"),
    "solid state battery": ("固态电池",),
    "sodium ion": ("钠离子",),
    "lithium ion": ("锂离子",),
    "cathode": ("正极",),
    "anode": ("负极",),
    "electrolyte": ("电解液", "电解质"),
    "separator": ("隔膜",),
    "energy storage": ("储能",),
    "photovoltaic": ("光伏",),
    "solar": ("光伏", "太阳能"),
    "perovskite": ("钙钛矿",),
    "hydrogen": ("氢能", "氢"),
    "fuel cell": ("燃料电池",),
    "bipolar plate": ("双极板",),
    "thermal runaway": ("热失控",),
    "thermal management": ("热管理",),
    "inverter": ("逆变器",),
    "charger": ("充电",),
    "battery module": ("电池模组",),
    "electrolyzer": ("电解槽",),
    "electrolyser": ("电解槽",),
    "electrolysis": ("电解",),
    "charging station": ("充电桩",),
    "power supply": ("电源",),
    "power electronics": ("电力电子",),
    "motor controller": ("电机控制器",),
    "controller": ("控制器",),
    "heat pump": ("热泵",),
    "cycle life": ("循环寿命",),
    "energy density": ("能量密度",),
    "fast charging": ("快充",),
    # materials
    "material": ("材料",),
    "materials": ("材料",),
    "polymer": ("高分子",),
    "plastic": ("塑料",),
    "plastics": ("塑料",),
    "flame retardant": ("阻燃",),
    "halogen free": ("无卤",),
    "twin screw": ("双螺杆",),
    "impact strength": ("冲击强度",),
    "notched impact": ("缺口冲击",),
    "toughening": ("增韧",),
    "reinforced": ("增强",),
    "pelletizing": ("造粒",),
    "masterbatch": ("色母",),
    "contact resistance": ("接触电阻",),
    "anti corrosion": ("防腐",),
    "immersion": ("浸泡",),
    "laminated": ("覆膜",),
    "deodorizing": ("除臭",),
    "odor": ("异味", "除臭"),
    "odour": ("异味", "除臭"),
    "compounding": ("改性", "造粒"),
    "adhesive": ("胶粘剂",),
    "sealant": ("密封胶",),
    "thermal interface": ("导热界面",),
    "graphene": ("石墨烯",),
    "carbon nanotube": ("碳纳米管",),
    "aerogel": ("气凝胶",),
    "thermal insulation": ("隔热",),
    "insulation": ("隔热", "绝缘"),
    "composite": ("复合材料",),
    "carbon fiber": ("碳纤维",),
    "alloy": ("合金",),
    "aluminium": ("铝",),
    "aluminum": ("铝",),
    "stainless steel": ("不锈钢",),
    "titanium": ("钛",),
    "silicone": ("硅胶",),
    "film": ("薄膜",),
    "thin film": ("薄膜",),
    "biodegradable": ("可降解", "生物降解"),
    "thermal conductivity": ("导热",),
    "emi shielding": ("电磁屏蔽",),
    "shielding": ("屏蔽",),
    "absorber": ("吸波",),
    "metal": ("金属",),
    "metals": ("金属",),
    "steel": ("钢材",),
    "copper": ("铜",),
    "magnesium": ("镁",),
    "magnesium alloy": ("镁合金",),
    "titanium alloy": ("钛合金",),
    "nickel": ("镍",),
    "glass": ("玻璃",),
    "rubber": ("橡胶",),
    "elastomer": ("弹性体",),
    "resin": ("树脂",),
    "epoxy": ("环氧",),
    "polyurethane": ("聚氨酯",),
    "nylon": ("尼龙",),
    "membrane": ("膜",),
    "paper": ("纸",),
    "wood": ("木材",),
    "fiber": ("纤维",),
    "fibre": ("纤维",),
    "powder": ("粉末", "粉体"),
    "slurry": ("浆料",),
    "magnetic": ("磁性",),
    "conductive": ("导电",),
    "insulating": ("绝缘",),
    "ink": ("油墨",),
    "pigment": ("颜料",),
    "dye": ("染料",),
    # medical, life science
    "medical device": ("医疗器械",),
    "medical devices": ("医疗器械",),
    "catheter": ("导管",),
    "implant": ("植入",),
    "diagnostic": ("诊断",),
    "in vitro diagnostic": ("体外诊断",),
    "reagent": ("试剂",),
    "drug": ("药物",),
    "pharmaceutical": ("制药", "药物"),
    "tablet": ("片剂",),
    "formulation development": ("配方", "制剂"),  # materials and pharmacy both say it
    "biocompatibility": ("生物相容性",),
    "clinical": ("临床",),
    "sterile": ("无菌",),
    "cleanroom": ("洁净车间",),
    "clean room": ("洁净车间",),
    "cell therapy": ("细胞治疗",),
    "gene therapy": ("基因治疗",),
    "antibody": ("抗体",),
    "vaccine": ("疫苗",),
    "organoid": ("类器官",),
    "cosmetics": ("化妆品",),
    "cosmetic": ("化妆品",),
    "skin": ("皮肤",),
    "efficacy": ("功效",),
    "eeg": ("脑电",),
    "electrode": ("电极",),
    "brain-computer interface": ("脑机接口",),
    "stent": ("支架",),
    "capsule": ("胶囊",),
    "syringe": ("注射器",),
    "orthopedic": ("骨科",),
    "dental": ("口腔", "牙科"),
    "rehabilitation": ("康复",),
    "ultrasound": ("超声",),
    "imaging": ("影像",),
    "surgical": ("手术",),
    "monitoring": ("监测",),
    "protein expression": ("蛋白表达",),
    "cell culture": ("细胞培养",),
    "purification": ("纯化",),
    "filtration": ("过滤",),
    "chromatography": ("色谱",),
    "sequencing": ("测序",),
    "microbial": ("微生物",),
    "microorganism": ("微生物",),
    "enzyme": ("酶",),
    "clinical trial": ("临床试验",),
    "hearing aid": ("助听器",),
    "blood glucose": ("血糖",),
    "blood pressure": ("血压",),
    # food
    "food": ("食品",),
    "beverage": ("饮料",),
    "drink": ("饮料",),
    "dairy": ("乳制品",),
    "plant based": ("植物基",),
    "oat milk": ("燕麦奶",),
    "probiotic": ("益生菌",),
    "probiotics": ("益生菌",),
    "fermentation": ("发酵",),
    "freeze drying": ("冻干",),
    "spray drying": ("喷雾干燥",),
    "extraction": ("提取",),
    "homogenisation": ("均质",),
    "sterilisation": ("灭菌",),
    "aseptic filling": ("无菌灌装",),
    "caking": ("结块",),
    "stick pack": ("条包",),
    "solid drink": ("固体饮料",),
    "solid beverage": ("固体饮料",),
    "food medicine homology": ("药食同源",),
    "ginseng": ("人参",),
    "sweetener": ("甜味剂", "代糖"),
    "sugar substitute": ("代糖",),
    "erythritol": ("赤藓糖醇",),
    "biscuit": ("饼干",),
    "tableting": ("压片",),
    "film coating": ("包衣",),
    "sterilization": ("灭菌",),
    "filling": ("灌装",),
    "shelf life": ("货架期",),
    "bakery": ("烘焙",),
    "baking": ("烘焙",),
    "cookie": ("曲奇", "饼干"),
    "cookies": ("曲奇", "饼干"),
    "snack": ("休闲食品",),
    "nutrition": ("营养",),
    "flavor": ("风味",),
    "flavour": ("风味",),
    "taste": ("口感", "口味"),
    "sensory": ("感官",),
    "juice": ("果汁",),
    "tea": ("茶",),
    "yogurt": ("酸奶",),
    "yoghurt": ("酸奶",),
    "milk": ("乳", "奶"),
    "sauce": ("酱料",),
    "condiment": ("调味品",),
    "seasoning": ("调味品",),
    "meat": ("肉",),
    "noodle": ("面条",),
    "noodles": ("面条",),
    "frozen": ("速冻", "冷冻"),
    "frozen food": ("速冻食品",),
    "dietary supplement": ("膳食补充剂",),
    "protein": ("蛋白",),
    "collagen": ("胶原蛋白",),
    "sugar": ("糖",),
    "sugar free": ("无糖",),
    "low sugar": ("低糖",),
    "preservative": ("防腐剂",),
    "additive": ("添加剂",),
    "emulsification": ("乳化",),
    "homogenization": ("均质",),
    # textiles, apparel, footwear
    "textile": ("纺织",),
    "fabric": ("面料",),
    "fabrics": ("面料",),
    "garment": ("服装",),
    "apparel": ("服装",),
    "clothing": ("服装",),
    "knitwear": ("针织", "毛织"),
    "knitting": ("针织",),
    "sweater": ("毛衫",),
    "footwear": ("鞋",),
    "shoe": ("鞋",),
    "shoes": ("鞋",),
    "sneaker": ("运动鞋",),
    "running shoe": ("跑鞋", "运动鞋"),
    "midsole": ("中底",),
    "outsole": ("大底", "鞋底"),
    "sole": ("鞋底",),
    "lattice": ("点阵",),
    "foam": ("发泡",),
    "foaming": ("发泡",),
    "dyeing": ("染色",),
    "printing and dyeing": ("印染",),
    "breathable": ("透湿", "透气"),
    "antibacterial": ("抗菌",),
    "wear test": ("试穿",),
    "fit test": ("试穿",),
    "woven": ("机织",),
    "knitted": ("针织",),
    "pattern making": ("制版", "打版"),
    "textile printing": ("印花",),
    "textile finishing": ("后整理",),
    "down jacket": ("羽绒服",),
    "jacket": ("夹克",),
    "outdoor": ("户外",),
    "sportswear": ("运动服",),
    "underwear": ("内衣",),
    "denim": ("牛仔",),
    "hat": ("帽子",),
    "bags": ("箱包",),
    "zipper": ("拉链",),
    "quick dry": ("速干",),
    "colorfastness": ("色牢度",),
    "shrinkage": ("缩水",),
    "pilling": ("起球",),
    "seamless": ("无缝",),
    "cotton": ("棉",),
    "wool": ("羊毛",),
    "silk": ("丝绸",),
}

ENGLISH_STOP_WORDS: frozenset[str] = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "for",
        "from",
        "has",
        "have",
        "i",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "our",
        "plus",
        "should",
        "that",
        "the",
        "their",
        "then",
        "this",
        "to",
        "was",
        "we",
        "were",
        "which",
        "will",
        "with",
        "would",
        "you",
        "your",
        "need",
        "needs",
        "want",
        "wants",
        "looking",
    ]
)
"""English function words dropped (Chinese particles are dropped as single characters)."""

CHINESE_STOP_WORDS: frozenset[str] = frozenset(
    [
        "我们",
        "我司",
        "公司",
        "需要",
        "希望",
        "进行",
        "提供",
        "可以",
        "能够",
        "目前",
        "已经",
        "相关",
        "以及",
        "用于",
        "完成",
        "支持",
        "一个",
        "一款",
        "一种",
        "一次",
        "这个",
        "这些",
        "以上",
        "以下",
        "之后",
        "然后",
        "并且",
        "同时",
        "或者",
        "如果",
        "但是",
        "因为",
        "所以",
        "通过",
        "对于",
        "关于",
        "根据",
        "其中",
        "主要",
        "没有",
        "不是",
        "还是",
        "就是",
        "什么",
        "怎么",
        "如何",
        "为了",
        "以便",
        "可以用",
        "想要",
        "想用",
        "找到",
    ]
)
"""Chinese function words and filler verbs that say nothing about the service wanted."""

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_RUN = re.compile(rf"[{_CJK}]+")
_HAS_CJK = re.compile(rf"[{_CJK}]")
_LATIN = re.compile(r"[a-z0-9]+(?:\.[0-9]+)*")
_ORIGINAL_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*")
# Clause boundaries in raw text, before NFKC: CJK and ASCII punctuation, brackets, line breaks.
# A period splits only before a space or at the end, so 0.1mm and UN38.3 stay whole.
_CLAUSE_SPLIT = re.compile(
    r"[，。；！？、：,;!?:\n\r\t（）()\[\]【】《》〈〉「」『』“”\"‘’|／/]+|\.(?:\s+|$)"
)

_base_lock = threading.Lock()


@functools.cache
def _base_dictionary() -> tuple[dict[str, int], int]:
    """jieba's default prefix dictionary, built (or read from jieba's cache file) once."""
    with _base_lock:
        jieba.setLogLevel(logging.WARNING)
        tokenizer = jieba.Tokenizer()
        tokenizer.initialize()
        return cast(dict[str, int], tokenizer.FREQ), cast(int, tokenizer.total)


def is_bigram(term: str) -> bool:
    return term.startswith(BIGRAM_PREFIX)


def _capitalised(words: Sequence[str]) -> set[str]:
    """The words of a clause written with two or more capitals (SiC, MEMS, AiP), lower-cased:
    abbreviations, kept whole. In a clause of three or more words written all in capitals
    (SMART RING RELIABILITY TESTS) the capitals say nothing of a word: only the short ones
    (CNAS, OTA) count, and the rest are stemmed like any word (tests, test), as they would
    be in lower case; known abbreviations and domain terms are kept whole anyway."""
    marked = [w for w in words if sum(ch.isupper() for ch in w) >= 2]
    if len(words) >= 3 and not any(ch.islower() for w in words for ch in w):
        marked = [w for w in marked if len(w) <= SHOUTED_ABBREVIATION_MAX]
    return {w.lower() for w in marked}


class Analyzer:
    """Chinese + English analysis with a domain dictionary; see the module docstring."""

    def __init__(
        self,
        domain_terms: Iterable[str] = (),
        *,
        stem: bool = True,
        bigrams: bool = True,
        glossary: Mapping[str, tuple[str, ...]] = ENGLISH_GLOSSARY,
        synonyms: Mapping[str, str] | None = None,
        synonym_bigrams: bool = DEFAULT_SYNONYM_BIGRAMS,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        """``synonyms`` maps an alias, as written, to its canonical term (for instance
        ``Taxonomy.synonyms()``); Chinese aliases and canonical terms join the dictionary."""
        domain_terms = tuple(domain_terms)
        synonyms = dict(synonyms or {})
        # What a worker process needs to build the same analyzer.
        self._spec: dict[str, Any] = {
            "domain_terms": domain_terms,
            "stem": stem,
            "bigrams": bigrams,
            "glossary": dict(glossary),
            "synonyms": synonyms,
            "synonym_bigrams": synonym_bigrams,
        }
        self.stem = stem
        self.bigrams = bigrams
        self._t2s = opencc.OpenCC("t2s")
        self._stemmer: Any = snowballstemmer.stemmer("english")
        freq, total = _base_dictionary()
        self._jieba = jieba.Tokenizer()
        self._jieba.FREQ = dict(freq)
        self._jieba.total = total
        self._jieba.initialized = True
        self._protected: set[str] = set(ABBREVIATIONS)
        added: set[str] = set()
        chinese_synonyms = (t for t in (*synonyms, *synonyms.values()) if _HAS_CJK.search(t))
        for raw in (*domain_terms, *chinese_synonyms):
            term = self.normalize(raw).strip()
            if not term or len(term) > MAX_DOMAIN_TERM_CHARS:
                continue
            for word in _ORIGINAL_WORD.findall(unicodedata.normalize("NFKC", raw)):
                # Latin words of a domain term (SiC, PCBA, LCP) are never stemmed.
                if len(word) <= 6 or sum(ch.isupper() for ch in word) >= 2:
                    self._protected.add(word.lower())
            if _HAS_CJK.search(term) and " " not in term and term not in added:
                added.add(term)
                self._jieba.add_word(term, DOMAIN_WORD_FREQ)
        for alias in synonyms:
            # Abbreviations among the aliases (FSMP, OSAT) are never stemmed; plain English
            # words (drones) are, so that singular and plural still meet.
            for word in _ORIGINAL_WORD.findall(unicodedata.normalize("NFKC", alias)):
                if sum(ch.isupper() for ch in word) >= 2:
                    self._protected.add(word.lower())
        self.domain_terms: frozenset[str] = frozenset(added)
        # English phrases: the glossary's Chinese terms and the canonical terms of aliases.
        glossary_table = self._phrase_table(
            (english, tuple((c, False) for c in chinese)) for english, chinese in glossary.items()
        )
        alias_table = self._phrase_table(
            (alias, ((term, True),))
            for alias, term in synonyms.items()
            if not _HAS_CJK.search(alias)
        )
        self._glossary: dict[Phrase, tuple[Target, ...]] = {}
        for key in (*glossary_table, *alias_table):
            glossed = glossary_table.get(key, ())
            self._glossary[key] = glossed + tuple(
                (term, True) for term, _ in alias_table.get(key, ()) if (term, False) not in glossed
            )
        self._max_phrase = max((len(k) for k in self._glossary), default=0)
        # Chinese and mixed aliases, found as whole jieba words.
        self._synonyms: dict[str, str] = {}
        for alias, term in synonyms.items():
            if _HAS_CJK.search(alias) and self.normalize(alias) != self.normalize(term):
                self._synonyms[self.normalize(alias).replace(" ", "")] = self.normalize(term)
        self.synonym_bigrams = synonym_bigrams
        self._expansions: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        self._clause = functools.lru_cache(maxsize=cache_size)(self._analyze_clause)

    # -- public ---------------------------------------------------------------------------

    def normalize(self, text: str) -> str:
        """NFKC, traditional -> simplified, lower case."""
        return cast(str, self._t2s.convert(unicodedata.normalize("NFKC", text))).lower()

    def clauses(self, text: str) -> list[str]:
        """The clauses of a text, its HTML markup taken out (``markup.plain_text``)."""
        return [c for c in _CLAUSE_SPLIT.split(plain_text(text)) if c and not c.isspace()]

    def analyze(self, text: str) -> list[str]:
        """All terms of a text: per clause, words (Chinese, then English) then bigrams."""
        out: list[str] = []
        for clause in self.clauses(text):
            out.extend(self._clause(clause))
        return out

    def clear_cache(self) -> None:
        """Forget every analysed clause: the next texts pay for their analysis again (a
        benchmark's cold start)."""
        self._clause.cache_clear()

    def analyze_clause(self, clause: str) -> tuple[str, ...]:
        """The terms of one clause (no punctuation inside), cached."""
        return self._clause(clause)

    def analyze_clauses(
        self,
        clauses: Sequence[str],
        *,
        workers: int = 0,
        chunk: int = 4000,
        pool: WorkerPool | None = None,
    ) -> Iterator[tuple[str, ...]]:
        """``analyze_clause`` of many distinct clauses, in order; many do not go through
        this analyzer's cache (a catalog's distinct clauses would crowd it). With ``workers`` > 0
        (and enough clauses to pay for starting them) worker processes, each with the same
        analyzer, take chunks from the end of the list while this thread works from the
        start; chunks no worker has begun when this thread gets to them are done here. The
        result is the same; only the time differs. ``pool``: workers already started
        (``start_workers``), used instead of starting new ones."""
        if len(clauses) < 4 * chunk:  # a few (an update): the cache helps
            yield from map(self._clause, clauses)
            return
        analyze = self._analyze_clause
        if pool is None and workers > 0:
            with self.start_workers(workers) as started:
                yield from self.analyze_clauses(clauses, chunk=chunk, pool=started)
            return
        if pool is None or not pool.running:
            yield from map(analyze, clauses)
            return
        bounds = list(range(0, len(clauses), chunk))
        # The first chunks are this thread's anyway; workers take the rest, last first.
        futures: dict[int, concurrent.futures.Future[list[str]]] = {}
        try:
            for start in reversed(bounds[1:]):
                futures[start] = pool.submit(list(clauses[start : start + chunk]))
        except Exception:  # a broken pool (a worker died): what it did not take is done here
            logger.warning("text-analysis workers unavailable; analysing in-process")
        try:
            for start in bounds:
                future = futures.get(start)
                if future is None or future.cancel():
                    yield from map(analyze, clauses[start : start + chunk])
                    continue
                try:
                    packed = future.result()
                except Exception:  # a dead worker: do its part here
                    logger.warning("a text-analysis worker failed; analysing in-process")
                    yield from map(analyze, clauses[start : start + chunk])
                    continue
                for p in packed:
                    yield tuple(p.split("\x00")) if p else ()
        finally:
            for future in futures.values():
                future.cancel()

    def start_workers(self, workers: int) -> WorkerPool:
        """``workers`` processes, each building this analyzer, started now: their start-up
        (a new interpreter, the imports and the dictionary, a second or two) then overlaps
        whatever the caller does before it hands them clauses (``analyze_clauses(...,
        pool=...)``). Use it as a context manager; it shuts them down."""
        return WorkerPool(self._spec, workers)

    def words(self, text: str) -> list[str]:
        """The terms without character bigrams."""
        return [t for t in self.analyze(text) if not is_bigram(t)]

    # -- internals ------------------------------------------------------------------------

    def _phrase_table(
        self, entries: Iterable[tuple[str, tuple[Target, ...]]]
    ) -> dict[Phrase, tuple[Target, ...]]:
        """English phrase -> targets, keyed by its words as the clause pass keeps them (stop
        words and quantities dropped), as stems and as written. A stem shared by two entries
        that mean different things (anodized and anode both stem to "anod") is dropped rather
        than guessed; exact spellings always work, clash or not."""
        rows = [
            (self._phrase_words(english), tuple((self.normalize(t), s) for t, s in targets))
            for english, targets in entries
        ]
        table: dict[Phrase, tuple[Target, ...]] = {}
        clashes: set[Phrase] = set()
        for words, targets in rows:
            key = tuple(self._stem_word(w) for w in words)
            if key and table.setdefault(key, targets) != targets:
                clashes.add(key)
        for key in clashes:
            del table[key]
        for words, targets in rows:
            if words:
                table[words] = targets
        return table

    def _phrase_words(self, english: str) -> Phrase:
        return tuple(
            w
            for w in _LATIN.findall(self.normalize(english))
            if w not in ENGLISH_STOP_WORDS and not (w.isdigit() and len(w) < 4)
        )

    def _stem_word(self, word: str) -> str:
        if not self.stem or len(word) < 4 or not word.isalpha() or word in self._protected:
            return word
        return cast(str, self._stemmer.stemWord(word))

    def _analyze_clause(self, clause: str) -> tuple[str, ...]:
        raw = unicodedata.normalize("NFKC", clause)
        capitalised = _capitalised(_ORIGINAL_WORD.findall(raw))
        text = cast(str, self._t2s.convert(raw)).lower()
        words: list[str] = []
        bigrams: list[str] = []
        canonical: dict[str, None] = {}  # canonical terms of the synonyms found, in order
        self._chinese(text, words, bigrams, canonical)
        latin: list[str] = []
        stems: list[str] = []
        for token in _LATIN.findall(text):
            if (token.isdigit() and len(token) < 4) or token in ENGLISH_STOP_WORDS:
                continue
            latin.append(token)
            if token in capitalised or token in self._protected:
                stems.append(token)
            else:
                stems.append(self._stem_word(token))
        words.extend(stems)
        if self._glossary and stems:
            for target, is_canonical in self._glossary_terms(latin, stems):
                if is_canonical:
                    canonical[target] = None
                else:
                    self._chinese(target, words, bigrams, canonical)
        present = set(words)
        for term in canonical:
            term_words, term_bigrams = self._expansion(term)
            # Only the words the clause lacks: an alias sharing a word with its term (IC设计,
            # 芯片设计) does not count that word twice.
            missing = [w for w in term_words if w not in present]
            words.extend(missing)
            present.update(missing)
            if self.synonym_bigrams:
                bigrams.extend(term_bigrams)
        # Interned: the clause cache then holds one copy of each term however many clauses
        # share it (1.6 KiB per cached clause without, about a fifth of that with).
        return tuple(map(sys.intern, words + bigrams))

    def _chinese(
        self, text: str, words: list[str], bigrams: list[str], canonical: dict[str, None] | None
    ) -> None:
        """The Chinese words (jieba search mode: a long word's dictionary sub-words, then the
        word) and bigrams of ``text``; a whole word that is an alias adds its canonical term
        to ``canonical`` (an ordered set), unless that is None."""
        if not _HAS_CJK.search(text):
            return
        runs = _CJK_RUN.findall(text)
        lone = {r for r in runs if len(r) == 1}
        freq = self._jieba.FREQ
        for whole in self._jieba.cut(text, HMM=False):
            # jieba's cut_for_search unrolled, so that a whole word is told from its parts.
            tokens: list[str] = []
            if len(whole) > 2:
                tokens.extend(w for i in range(len(whole) - 1) if freq.get(w := whole[i : i + 2]))
            if len(whole) > 3:
                tokens.extend(w for i in range(len(whole) - 2) if freq.get(w := whole[i : i + 3]))
            tokens.append(whole)
            for token in tokens:
                token = token.strip()
                if not token or not _HAS_CJK.search(token):
                    continue  # punctuation, spaces and pure Latin (handled by the Latin pass)
                # A single character is a term only where it stands alone, between Latin
                # words (6061 铝 housing), and never when it is a particle (IGBT与MOSFET's 与).
                if len(token) == 1 and (token not in lone or token in BIGRAM_BREAKS):
                    continue
                if token in CHINESE_STOP_WORDS:
                    continue
                words.append(token)
            if canonical is not None and self._synonyms:
                term = self._synonyms.get(whole.strip())
                if term is not None:
                    canonical[term] = None
        if self.bigrams:
            for run in runs:
                bigrams.extend(
                    BIGRAM_PREFIX + pair
                    for i in range(len(run) - 1)
                    if not (BIGRAM_BREAKS & set(pair := run[i : i + 2]))
                )

    def _expansion(self, term: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The words and bigrams of a canonical term (normalised), analysed once and without
        synonyms, so that an expansion never expands again."""
        found = self._expansions.get(term)
        if found is None:
            words: list[str] = []
            bigrams: list[str] = []
            self._chinese(term, words, bigrams, None)
            for token in _LATIN.findall(term):
                if (token.isdigit() and len(token) < 4) or token in ENGLISH_STOP_WORDS:
                    continue
                words.append(token if token in self._protected else self._stem_word(token))
            found = self._expansions[term] = (tuple(words), tuple(bigrams))
        return found

    def _glossary_terms(self, latin: list[str], stems: list[str]) -> list[Target]:
        """What the English words and phrases of a clause (as written, else as stems) emit,
        longest phrase first, each word used by one phrase at most."""
        found: list[Target] = []
        i = 0
        while i < len(stems):
            for size in range(min(self._max_phrase, len(stems) - i), 0, -1):
                chinese = self._glossary.get(tuple(latin[i : i + size])) or self._glossary.get(
                    tuple(stems[i : i + size])
                )
                if chinese is not None:
                    found.extend(chinese)
                    i += size
                    break
            else:
                i += 1
        return found


# -------------------------------------------------------------- worker processes

logger = logging.getLogger(__name__)
_worker_analyzer: Analyzer | None = None


class WorkerPool:
    """Worker processes holding the same analyzer (see ``Analyzer.start_workers``). If no
    process can be started, ``running`` is False and the caller analyses in-process.

    The processes are started from a thread of their own: starting one writes the analyzer's
    spec (about 100 KiB at 100k suppliers) to a pipe the new process reads only once its
    interpreter is up, which would block the caller for about a second."""

    def __init__(self, spec: dict[str, Any], workers: int) -> None:
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._starter: threading.Thread | None = None
        if workers <= 0:
            return
        try:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(spec,),
            )
        except (OSError, RuntimeError, ValueError):
            logger.warning("no worker processes for text analysis; analysing in-process")
            return
        self._starter = threading.Thread(
            target=self._start, args=(self._pool, workers), name="analysis-workers", daemon=True
        )
        self._starter.start()

    def _start(self, pool: concurrent.futures.ProcessPoolExecutor, workers: int) -> None:
        try:
            # A process is started on a submission: one trivial task each.
            for _ in range(workers):
                pool.submit(_analyze_in_worker, [])
        except Exception:  # no process could start: the caller analyses in-process
            logger.warning("no worker processes for text analysis; analysing in-process")
            self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)

    @property
    def running(self) -> bool:
        if self._starter is not None:
            self._starter.join()
        return self._pool is not None

    def submit(self, clauses: list[str]) -> concurrent.futures.Future[list[str]]:
        assert self.running and self._pool is not None
        return self._pool.submit(_analyze_in_worker, clauses)

    def close(self) -> None:
        if self._starter is not None:
            self._starter.join()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _start_worker(spec: dict[str, Any]) -> None:
    global _worker_analyzer
    _worker_analyzer = Analyzer(spec["domain_terms"], stem=spec["stem"], bigrams=spec["bigrams"],
                                glossary=spec["glossary"], synonyms=spec["synonyms"],
                                synonym_bigrams=spec["synonym_bigrams"], cache_size=0)  # fmt: skip


def _analyze_in_worker(clauses: list[str]) -> list[str]:
    """Each clause's terms joined by NUL (one string per clause pickles fast)."""
    analyzer = _worker_analyzer
    assert analyzer is not None
    return ["\x00".join(analyzer.analyze_clause(c)) for c in clauses]
