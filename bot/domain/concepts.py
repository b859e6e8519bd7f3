"""The matcher's concepts: one name per idea, with the surface forms that mean it in English,
Malay and Chinese ("maid", "amah", "pembantu rumah", "外佣" -> ``maid``).

Data only. :mod:`bot.domain.matcher` reads questions and guides with it; the guide checker
(:mod:`bot.domain.guides`) checks that a guide's ``[[answers]]`` name known concepts. A module of
its own so that neither of those two imports the other for it.

After changing it, regenerate the Chinese segments (``python -m bot.domain.matcher
--write-segments``) and refit the confidence (``python bench/tune_confidence.py``).
"""

from __future__ import annotations

__all__ = ["CONCEPTS"]

# Concept -> surface forms, in any language. Latin forms match whole words (lower-case, several
# words allowed); Chinese forms match as substrings. Misspellings people type belong here too.
# fmt: off
CONCEPTS: dict[str, tuple[str, ...]] = {
    "socso": (
        "socso", "sosco", "soxso", "socs", "scoso", "socco", "perkeso", "perkezo",
        "perkesso", "pkeso", "perkso", "social security", "keselamatan sosial", "ksp",
        "社险", "社险机构", "社会保险", "社会保险机构", "社保", "社安", "社险局",
    ),
    "eis": (
        "eis", "sip", "employment insurance", "employment insurance system",
        "insurans pekerjaan", "sistem insurans pekerjaan", "eis sip", "sip eis",
        "就业保险", "就业保险计划", "就业保险制度", "失业保险", "就业险",
    ),
    "maid": (
        "maid", "maids", "amah", "helper", "helpers", "domestic worker", "domestic workers",
        "domestic helper", "domestic helpers", "pembantu rumah", "pembantu", "pekerja domestik",
        "prt", "bibik", "bibi", "orang gaji", "fdh", "fdw", "household worker",
        "女佣", "外佣", "菲佣", "印佣", "佣人", "帮佣", "家庭帮佣", "家佣", "女傭", "外傭", "保姆",
        "家务助理", "家庭佣工",
    ),
    "assist": ("assist", "asist", "assit", "portal assist", "assist portal", "assist perkeso"),
    "register": (
        "register", "registration", "registered", "registering", "reigster", "regster",
        "regsiter", "daftar", "pendaftaran", "mendaftar", "didaftarkan", "daftarkan", "sign up",
        "signup", "enrol", "enroll", "enrolment", "new account", "akaun baru", "buka akaun",
        "注册", "登记", "申请", "开户", "报名",
    ),
    "pay": (
        "pay", "paid", "paying", "payment", "payments", "bayar", "byr", "bayaran", "membayar",
        "dibayar", "pembayaran", "fpx", "caruman", "carum", "contribution", "contributions",
        "contribute", "缴纳", "缴", "付", "支付", "付款", "缴费", "付钱", "供款", "怎么交", "要交", "交钱", "交社险",
    ),
    "deadline": (
        "deadline", "deadlines", "due", "due date", "last day", "last date", "latest by",
        "before when", "what date", "which date", "tarikh akhir", "tarikh tutup", "tarikh",
        "sebelum bila", "hari bulan", "hb", "截止", "截止日期", "期限", "最迟", "几号", "限期",
        "最后一天", "哪天", "什么时候", "几时",
    ),
    "deduct": (
        "deduct", "deducted", "deduction", "deductions", "potong", "potongan", "dipotong",
        "扣", "扣款", "扣薪", "扣除", "扣钱",
    ),
    "day15": ("15th", "15hb", "15 hb", "15 hari bulan", "fifteenth", "15号", "15日"),
    "day16": ("16th", "16hb", "16 hb", "16 hari bulan", "sixteenth", "16号", "16日"),
    "late": (
        "late", "lateness", "overdue", "interest", "fclb", "lewat", "terlewat",
        "lambat", "tertunggak", "迟", "迟交", "逾期", "迟缴", "利息", "晚交", "迟付", "拖欠",
    ),
    "penalty": (
        "fine", "fined", "penalty", "penalties", "penalti", "denda", "saman", "jail", "prison",
        "offence", "what happens if", "kalau tak", "kalau tidak", "罚款", "罚金", "被罚", "会怎样",
        "坐牢", "罚",
    ),
    "must": (
        "must", "compulsory", "mandatory", "required", "obligatory", "do i need", "is it need",
        "wajib", "mesti", "diwajibkan", "perlu ke", "kena ke", "一定要", "必须", "强制", "需要缴",
        "需要买", "需要交", "要不要", "是否要", "需不需要",
    ),
    "documents": (
        "document", "documents", "docs", "doc", "passport", "pasport", "permit", "work permit",
        "ic", "mykad", "copy", "salinan", "dokumen", "permit kerja", "lampiran c", "form", "forms",
        "borang", "文件", "护照", "准证",
        "工作准证", "证件", "身份证", "资料",
    ),
    "weekend": (
        "weekend", "sunday", "saturday", "public holiday", "holiday", "hujung minggu", "ahad",
        "sabtu", "cuti umum", "cuti", "星期天", "星期日", "星期六", "周末", "礼拜天", "公共假期",
        "假期", "假日",
    ),
    "table": (
        "table", "rate table", "contribution table", "jadual", "jadual caruman", "schedule",
        "费率表", "缴纳表", "对照表",
    ),
    "password": (
        "password", "pasword", "passwd", "pw", "kata laluan", "katalaluan", "login", "log in",
        "log masuk", "user id", "userid", "username", "idportal", "portal id", "id portal",
        "forgot", "forget", "lupa", "reset", "locked", "密码", "登录", "登入", "账号", "帐号",
        "户口", "用户名", "账户",
    ),
    "lindung": (
        "lindung", "lindung 24 jam", "lindung24jam", "24jam", "24 jam", "24 hour", "24 hours",
        "24hr", "24h", "skbbk", "non work", "non-work", "outside work", "after work",
        "bukan bencana kerja", "kemalangan bukan", "off duty", "off-duty",
        "24小时", "非工伤", "工作以外",
    ),
    "noteligible": (
        "not eligible", "noteligible", "ineligible", "not eligable", "tidak layak", "tak layak",
        "x layak", "xlayak", "tk layak", "exempt", "tak perlu bayar", "tidak perlu bayar",
        "x perlu bayar", "不用缴", "不需要缴", "免缴", "不必缴", "不用交", "eligible", "eligibility", "layak", "kelayakan",
        "不符合", "不合格", "资格", "没资格", "不符", "不能缴", "不可以缴",
    ),
    "rate": (
        "rate", "rates", "kadar", "percentage", "percent", "peratus", "how much", "berapa",
        "brp", "ceiling", "siling", "had siling", "max",
        "maximum", "category", "kategori", "jenis pertama", "jenis kedua", "first category",
        "second category", "费率", "比率", "百分比", "多少", "多少钱", "上限", "类别",
        "率", "扣多少",
    ),
    "contact": (
        "contact", "hotline", "helpline", "careline", "phone", "call", "number", "tel",
        "telephone", "email", "e-mail", "office", "branch", "counter", "talk", "hubungi",
        "telefon", "nombor", "no tel", "pejabat", "cawangan", "kaunter", "emel",
        "khidmat pelanggan", "customer service", "电话", "联系", "联络", "客服", "热线",
        "办事处", "分行", "邮件", "电邮", "打给", "找谁",
    ),
    "textfile": (
        "text file", "txt", "textfile", "fail teks", "fail txt", "upload", "muat naik",
        "文本文件", "文本", "上传", "txt文件",
    ),
    "worker": (
        "employee", "employees", "worker", "workers", "staff", "staffs", "pekerja", "kakitangan",
        "pekerja saya", "员工", "雇员", "工人", "职员", "伙计",
    ),
    "employer": (
        "employer", "employers", "majikan", "company", "syarikat", "business", "boss",
        "雇主", "公司", "老板",
    ),
    "foreign": (
        "foreign", "foreigner", "foreign worker", "asing", "pekerja asing", "indonesian",
        "filipino", "filipina", "philippine", "bangladeshi", "nepali", "myanmar", "外劳", "外籍", "外国",
        "印尼", "孟加拉", "尼泊尔", "缅甸",
        "外佣", "外傭", "菲佣", "印佣", "fdh", "fdw",
    ),
    "correction": (
        "arrears", "arrear", "refund", "refunds", "too little", "too much", "paid twice",
        "overpaid", "overpay", "underpaid", "underpay", "short payment", "tunggakan", "bayaran balik",
        "lebih bayar", "terlebih bayar", "kurang bayar", "terkurang bayar", "terbayar", "dua kali",
        "退款", "退钱", "补缴", "缴少了", "缴多了", "少缴", "多缴", "少交了", "多交了", "重复缴",
        "漏报", "漏缴", "漏了", "能退吗", "退回",
    ),
    "accident": (
        "accident", "accidents", "injury", "injured", "hurt", "kemalangan", "cedera", "tercedera",
        "意外", "车祸", "受伤", "工伤", "工作意外",
    ),
    "benefit": (
        "benefit", "benefits", "allowance", "pension", "invalidity", "disability", "disabled",
        "elaun", "pencen", "keilatan", "ilat", "hilang upaya", "津贴", "福利", "退休金", "残障",
        "残疾", "赔偿",
    ),
    "jobloss": (
        "retrench", "retrenched", "retrenchment", "laid off", "lost my job", "lose job",
        "unemployed", "unemployment", "diberhentikan", "hilang kerja", "hilang pekerjaan",
        "buang kerja", "vss", "裁员", "失业", "被裁", "没工作",
    ),
    "selfemployed": (
        "self employed", "self-employed", "sksps", "bekerja sendiri", "orang yang bekerja sendiri",
        "freelancer", "freelance", "e-hailing", "grab driver", "p-hailing", "自雇", "自由业",
    ),
    "cantpay": (
        "can't pay", "cant pay", "cannot pay", "unable to pay", "not able to pay", "can not pay",
        "can't make payment", "cannot make payment", "not open yet", "not yet open",
        "can't i pay", "cant i pay", "cannot i pay", "can't we pay", "cannot we pay",
        "not allowed to pay", "pay yet", "pay it yet",
        "tak boleh bayar", "tidak boleh bayar", "x boleh bayar", "tak dapat bayar",
        "tidak dapat bayar", "tak boleh buat bayaran", "belum boleh bayar", "belum dibuka",
        "不能付", "不能缴", "付不了", "缴不了", "无法付", "无法缴", "不能交", "交不了", "还不能",
        "不给付", "不让付", "付不到",
    ),
    "age": (
        "age", "old", "umur", "usia", "60", "57", "55", "18", "warga emas", "pencen", "retire",
        "年龄", "岁", "退休",
    ),
}

# fmt: on
