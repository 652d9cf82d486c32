"""Credentials by name and alphabet: a value kept under a credential's name is refused by its length and alphabet,
in the config files and request forms that carry one; templates, redactions, defaults, code and words pass."""

from __future__ import annotations

import base64
import json
import random

import pytest

from bottle_core.bundle.image import inspection
from bottle_core.bundle.image import inspection_names as names

RANDOM = "q7Vx2Lp9Rk4Tz8Wm3Nc6Hb1Js5"  # 26 letters and digits mixed: what a generator issues


@pytest.fixture
def inspector():
    return inspection.Inspector([], ["allowed.test"])


def sent(inspector, text: str, content_type: str = "application/json"):
    body = json.dumps({"note": text}).encode() if content_type == "application/json" else text.encode()
    return inspector.inspect("allowed.test", 443, "/notes", [("content-type", content_type)], body, content_type)


ATTACKS = {
    "npmrc-legacy-uuid": "//registry.npmjs.org/:_authToken=27dfe8d8-889b-4380-92ff-9c3c6ea5d478\n",
    "npmrc-auth": "//npm.example.org/:_auth=" + base64.b64encode(b"alice:s3cr3t-Pa55w0rd").decode() + "\n",
    "npmrc-password": "//npm.example.org/:_password=" + base64.b64encode(b"Tr0ub4dor&3xyz").decode() + "\n",
    "pypirc": "[pypi]\nusername = alice\npassword = Tr0ub4dor&3xyz\n",
    "netrc": "machine api.example.org login alice password gh0stlyP4ssw0rd\n",
    "docker-config": json.dumps({"auths": {"registry.example.org": {
        "auth": base64.b64encode(b"alice:Tr0ub4dor&3xyz").decode()}}}),
    "maven-settings": "<server><id>repo</id><username>alice</username><password>Tr0ub4dor3xyzQ</password></server>",
    "env": "STRIPE_WEBHOOK_SECRET=" + RANDOM,
    "yaml": "service:\n  api_key: " + RANDOM + "\n",
    "json": json.dumps({"client_secret": RANDOM}),
    "go": 'solarwindsKey := "' + RANDOM + '"',
    "log": "[DEBUG] Using Key=" + RANDOM,
    "spaced": "APIKEY  " + RANDOM,
    "dashed": "pastebin token - '" + RANDOM + "'",
    "bearer-in-text": "curl -H 'Authorization: Bearer " + RANDOM + "' https://api.example.org",
    "query-key": "https://api.example.org/v1/user?key=9e4635bc-28dc-45d3-8546-2b30115d9a7b",
    "sshpass": "sshpass -p 'Tr0ub4dor3' ssh deploy@host",
    "mysql": "mysql -u root -pTr0ub4dor3 shop",
    "password-option": "pg_tool --host db --password Tr0ub4dor3xyz --verbose",
    "digits": "api_key=1234567890123456789012345678901234567890",
    "escaped-json": 'config.json: "{\\"auths\\": {\\"r.example.org\\": {\\"auth\\":\\"'
                    + base64.b64encode(b"alice:Tr0ub4dor&3xyz").decode() + '\\"}}}"',
    "numbered": "typeform_token2 = '" + RANDOM + "'",
    "cli-option": "AzureStorageCleanup.exe -storagename acct -storagekey " + RANDOM + "==",
    "quoted-scheme": 'auth_header: "Bearer ' + RANDOM + '"',
    "dotted-prefix": "maps_token = 'pk." + RANDOM + "'\nsupport_token = 'tkn.v1_" + RANDOM + "'",
}


@pytest.mark.parametrize("name", ATTACKS)
def test_a_value_kept_under_a_credential_name_is_refused(inspector, name):
    finding = sent(inspector, ATTACKS[name])
    assert finding is not None and finding.rule == "credential", name


BENIGN = {
    "npmrc-template": "//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n",
    "env-reference": "API_KEY=$API_KEY\nSECRET_KEY=%(secret)s\n",
    "redacted": 'api_key: "****************************"',
    "bullets": "https://username:••••••••@example.com",
    "angle": "password = <your password here>",
    "default": "password=changeme\nadmin_password: admin123",
    "words": '"secret": "your-secret-goes-here"',
    "code-call": "api_key = generateApiKeySomeLongMethodName()",
    "code-attribute": "token: process.env.GITHUB_TOKEN_VALUE\nsecret_key = settings.SECRET_KEY_FALLBACK",
    "subscript": "password = os.environ['DATABASE_PASSWORD']",
    "csrf": "csrf_token = 'a8f7d6c5b4a39281f0e9d8c7'\npage_token=CiAKGjBpNDd2Nmp2Zml2cXRlNTYwZ3JnMXAxMDAQAhgB",
    "public-key": "public_key = 'MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE'",
    "hash-under-key": json.dumps({"key": "5f4dcc3b5aa765d61d8327deb882cf99", "value": 3}),
    "uuid-under-key": json.dumps({"key": "9e4635bc-28dc-45d3-8546-2b30115d9a7b"}),
    "time-uuid": "object_key=6fa459ea-ee8a-11ea-adc1-0242ac120002",  # 'key' may name a lookup: an id
    "path": "PWD: /home/nodeuser/project/node\npassword_file: /etc/app/password.txt",
    "prose": "Pass `--http-server-default-timeout=milliseconds` or bypass same-origin-policy checks. "
             "Keep the passphrase confidential and the secret ingredient in the key position.",
    "max-tokens": json.dumps({"max_tokens": 4096, "token_type": "bearer", "auth": "required"}),
    "numbers": "api_key_id=218873249\nkey: 12345",
    "filler": "api_key=xxxxxxxxxxxxxxxxxxxxxxxx\nsecret=0000000000000000",
    "format-string": 'cmd := fmt.Sprintf("sshpass -p %s", password)',
    "mysql-prompt": "mysql -u root -p shopdb < dump.sql\nmysqldump --password=$DB_PASSWORD shop",
    "out-of-alphabet": "token = 'JFjlJg7KqFGp5RmsJVq7?DmwObgHW6JEtMOitGuP'",  # one stray character: a typo
    "escaped-template": 'config.json: "{\\"auth\\":\\"${DOCKER_AUTH}\\"}"',
    "cli-words": "tool --api-key-file /etc/tool/key.txt --token-type bearer",
    "prose-key": "the key position is held by the primary replica",
    "annotation": "passphrase: Optional[PassphraseCallableT] = None",
    "attribute-path": "nid_key = self._lib.NID_pbe_WithSHA1And3_Key_TripleDES_CBC\n"
                      "password = base64.b16encode(random_bytes[8:])\nRegEnumKey = win32api.RegEnumKey",
}


@pytest.mark.parametrize("name", BENIGN)
def test_templates_redactions_defaults_code_and_words_pass(inspector, name):
    assert sent(inspector, BENIGN[name]) is None, name


def test_a_named_credential_may_go_where_a_secret_is_bound():
    bound = inspection.Inspector([{"name": "T", "value": "tok-" + RANDOM, "placeholder": "bottle-placeholder-t",
                                   "hosts": ["api.example.org"]}], ["allowed.test", "api.example.org"])
    body = json.dumps({"api_key": "Hd8sK2mQ7wZ4xR9tL3vN6pB1"}).encode()
    assert bound.inspect("api.example.org", 443, "/", [], body, "application/json") is None
    assert bound.inspect("allowed.test", 443, "/", [], body, "application/json").rule == "credential"


@pytest.mark.parametrize("name,expected", [
    ("npm_authToken", (True, False)), ("API_KEY", (True, False)), ("x-api-key", (True, False)),
    ("duo_skey", (True, False)), ("DB_PASSWORD", (True, True)), ("netrc password", (True, True)),
    ("csrf_token", (False, False)), ("public_key", (False, False)), ("max_tokens", (False, False)),
    ("secretary", (False, False)), ("bypass", (False, False)), ("q7Vx2Lp9key", (False, False)),
])
def test_a_credential_name_is_read_by_its_last_word(name, expected):
    assert names.credential_name(name) == expected


def test_random_text_with_credential_words_in_it_is_not_read_as_an_assignment():
    rng = random.Random(4)
    # Lower-cased base64 words: 'key', 'pass', 'auth' turn up inside them by chance, followed by more of them.
    noise = " ".join(base64.b64encode(rng.randbytes(12)).decode().lower() for _ in range(20000))
    assert names.find(noise) is None


# Classes of credential that no provider's shape names, each judged as a class; beside each, its benign
# counterpart, which passes.
CLASSES = {
    "uuid-under-token": (
        ["session_token=6fa459ea-ee8a-11ea-adc1-0242ac120002",
         "//registry.npmjs.org/:_authToken=2a3bc7bb-f252-11f1-9d64-0242ac120002\n"],  # legacy npm: version 1
        ["object_key=6fa459ea-ee8a-11ea-adc1-0242ac120002", "trace_id: 6fa459ea-ee8a-11ea-adc1-0242ac120002"]),
    "short-token": (
        ["access_token=Zq4r8Tn2x", "client_secret: 'k3v9qz7w2'", "auth_token = \"7hK2m9Qp\""],
        ["access_token=sdlfkj452", "auth_token=build123", "cache_key=k3v9qz7w", "token: 'abcdefgh'",
         "secret = 'x9'"]),
    "percent-equals-bracket-colon": (
        ["oauth_token = 'hQ7vK2mZ%2Fp9Lr4Tx8Wn%3D3Jc6Yb1Rs5'", "client_secret = 'q7Vx2Lp9=Rk4Tz8Wm3Nc6]Hb1Js5'",
         "bot_token: 869511423:Bct7Ab2QxYz9LmN4pRs8TuV"],
        ["oauth_token_secret=secret%3Dpassword&oauth_token=lock%26key", 'toolskey = "VS%0.f0COMNTOOLS" % version',
         "token: ns:app:session:cache", "secret = '=equals-sign'"]),
    "passphrase": (
        ["db_password = 'purple_monkey_dishwasher'", "passphrase=GreenTigerRiverLamp", "password = 'sun$hine1'",
         "//npm.example.org/:_auth=CorrectHorseBatteryStaple\n"],
        ["password = user_password", "password = index_info", "password: 'my_password'", "password = 'Passwort'",
         "get '/forgot-password' => \"cms/sites/passwords#update\"", "new_password = 'Enter a new password'",
         "password = forms.CharField(widget=forms.PasswordInput)"]),
    "provider-name": (
        ["SENDGRID = '" + RANDOM + "'", "stripe: " + RANDOM, "export SONARQUBE=" + RANDOM,
         'github = "caa3224b5ddb83924e6a487ee3f6543bae428309"'],
        ["github: https://github.com/org/repo", "arn:aws:sns:us-east-1:123456789012:" + RANDOM,
         "slack_channel = 'C0123ABCDEF45'", "stripe = '2.1.0'", "github = 'main'", "twilio: true"]),
    "punctuated-secret": (
        ["SECRET_KEY = 'django-insecure-k9#m!x2^p@q7&w(z)v4+r=t8*s$'", 'jwt_secret: "7vDxYRm)T;W5]EBrf;_&k>qX!"'],
        ["SECRET_KEY = 'change me: any long random string!'", "token = 'JFjlJg7KqFGp5RmsJVq7?DmwObgHW6JEtMOitGuP'",
         "secret_key = '%(asctime)s-%(levelname)s'", 'api_key: "^[A-Za-z0-9_-]{32,64}$"']),
    # Any program's option named password, and -p or /p: after a user option: judged as a password's value.
    "command-line-password": (
        ["psql --password=Tr0ub4dor3xyz -h db", "backup-tool --passwd 'Tr0ub4dor&3' --host db",
         "Connect-Server -Server db -Password Tr0ub4dor3xyz", "tool /password:Tr0ub4dor3xyz",
         "net use Z: \\\\srv\\share /user:alice /p:Tr0ub4dor3", "svn checkout -u alice -p Tr0ub4dor3 repo",
         "client --user alice -pTr0ub4dor3 --host db", "ftp-upload -U deploy -p 'Zq4r8Tn2x!' file"],
        ["psql --password=$PGPASSWORD -h db", "tool --password=%DB_PW% run", "tool --password - < pw.txt",
         "tool -u alice -p '********'", 'tool --password "{{ db_password }}"', "msbuild /p:Configuration=Release",
         "ssh -p 2222 deploy@host", "tool -u alice -p 8080", "mkdir -p build/out", "cp -p a.txt b.txt",
         "tool --password-file /etc/tool/pw --user alice", "the --password option reads a password"]),
    # A container registry's login takes -p as its password, with or without a user option before it.
    "registry-login": (
        ["docker login -p Tr0ub4dor3xyz registry.example.test", "podman login -p 'Zq4r8Tn2x!' quay.test",
         "helm registry login -u ci -p Tr0ub4dor3xyz oci.test"],
        ["docker login -p $REGISTRY_PASSWORD registry.example.test", "docker login --password-stdin < pw.txt",
         "docker run -p 8080:80 nginx", "docker login registry.example.test"]),
    # A credential's name written as two words: the value may follow after blanks, and a hex value counts.
    "spelled-name": (
        ["acme access key Hq7vK2mZp9Lr4Tx8Wn3Jc6Yb1Rs5", "API key Hq7vK2mZp9Lr4Tx8Wn3Jc6Yb1Rs5",
         "client secret q7Vx2Lp9Rk4Tz8Wm3Nc6Hb1Js5", "private key: 3f1a9c7b2e8d2e4f6a1b3c5d7e9f0a1b2"],
        ["the API key is stored in the vault", "a private key file named id_rsa",
         "the access token expires after an hour", "key: 3f1a9c7b2e8d2e4f6a1b3c5d7e9f0a1b2",
         "the secret key ingredient"]),
    # An Authorization header written in a script, a config or a body: Basic's password, another scheme's token.
    "written-authorization": (
        ["curl -H 'Authorization: Basic " + base64.b64encode(b"alice:Tr0ub4dor&3xyz").decode() + "' https://x.test",
         'headers = {"Authorization": "Token ' + RANDOM + '"}', "Authorization: SSWS 00QCjAl4MlV-WPXM-ABCDEFGH",
         "proxy_authorization = Bearer Zq4r8Tn2x"],
        ["curl -H 'Authorization: Basic " + base64.b64encode(b"user:password").decode() + "' https://x.test",
         'headers = {"Authorization": "Bearer ${API_TOKEN}"}', "Authorization: Bearer <token>",
         "Authorization: Token $GITHUB_TOKEN", "The Authorization header carries the token.",
         "Authorization: Basic " + base64.b64encode(b"alice:$PASSWORD").decode()]),
    # crypt(3)'s formats, PBKDF2's and Kerberos' cracker forms: a password's hash is credential material.
    "password-hash": (
        ["root:$6$gzg1BAWl7fGq1hQ2$" + "Zq4r8Tn2xVb" * 7 + "Zq4r8Tn2x:19000:0:99999:7:::",
         "$1$F.Z1BEO0$Zq4r8Tn2xVbHk3Lm9Pq2Wd", "hash = '$2b$12$" + ("Zq4r8Tn2xVbHk3Lm9Pq2Wd" * 3)[:53] + "'",
         "$5$rounds=5000$saltsalt$" + ("Zq4r8Tn2xVbHk3Lm9Pq2Wd" * 2)[:43],
         "$y$j9T$abcdefghijklmnop$ZrkBpUBCDi3MK7LE9Ay9jscShCxVaFVi4wHPDobzz36",
         "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
         "password = pbkdf2_sha256$260000$Xq9sLk2J8vHm$Zm9vYmFyYmF6cXV4cXV1eHF1dXhmb29iYXI=",
         "enable secret 8 $8$dsYGNam3K1SIJO$7nv/35M/qr6t.dVc7UY9zrJDWRVqncHub1PE9UlMQFs",
         "$krb5tgs$23$*svc$CORP.TEST$http/web*$" + "3f1a9c7b2e" * 4 + "$" + "8d2e4f6a1b3c5d7e9f0a" * 6],
        ["echo $1$2 and costs $5 or $6", "hash = '$2b$12$" + "." * 53 + "'", "PS1='$5$ '",
         "root:*:19000:0:99999:7:::", "daemon:!:19000::::::", "awk '{print $1$2$3}' file.txt",
         "crypt(3) formats start $1$, $5$, $6$, $2b$ or $y$"]),
    # 'ACCESS' and 'PRIVATE' qualify a credential after another word (a provider's, the key's) or in capitals.
    "qualified-name": (
        ["tyntec ACCESS " + RANDOM, "hellosignACCESS = " + RANDOM, "logzPrivateAccess=" + RANDOM,
         "nimble PRIVATE " + RANDOM, "shortcut_access: " + RANDOM],
        ["access: public", "private = true", "last_access = 1700000000000", "read_access = rw-r--r--",
         "ACCESS DENIED for user alice", "public_access: enabled", "the private repository is here"]),
    # One '-' or '.' glues a value to a name of two words, or to a word glued to its credential's word.
    "glued-to-its-name": (
        ["cloudplanSECRET-" + RANDOM, "acme-secret-" + RANDOM, "scrapingant123TOKEN." + RANDOM,
         "codakey-4f0e2f7a-2b1c-4d3e-9f8a-7b6c5d4e3f21", "hellosign-PRIVATE-key-" + RANDOM],
        ["my-app-secret-7f9c8b6d5-x2k4p", "/v1/secret-versions/7f3a9c2e4b1d8f6a", "the secret-manager docs",
         "config.api_key.get_secret_value()", "acme-secret-rotation-policy-2024", "token-" + RANDOM]),
    # A name of two words or more is an identifier: blanks alone may separate its value.
    "compound-name-then-blanks": (
        ["extractorapi_key " + RANDOM, "hellosign-PRIVATE-key " + RANDOM, "protocolsACCESSkey " + RANDOM],
        ["the api_key parameter is required", "set the API_KEY variable first",
         "api_key and api_secret are read from the environment", "pass the access_token along"]),
    # A name and its value as a pair of strings: a call's arguments, a dictionary's entry, .NET's appSettings,
    # Kubernetes' and ECS's name/value lists, Terraform's variable default.
    "pair-of-strings": (
        ['req.Header.Set("X-Acme-Api-Key", "' + RANDOM + '")', '{ "AccountKey", "' + RANDOM + '" }',
         '<add key="ApiKey" value="' + RANDOM + '"/>', "- name: API_KEY\n  value: " + RANDOM,
         '{"name": "DB_PASSWORD", "value": "Tr0ub4dor3xyz"}', 'variable "api_token" {\n  default = "' + RANDOM
         + '"\n}', "assert.equal(settings['AccountKey'], '" + RANDOM + "')"],
        ['os.environ.get("API_KEY", "default-value")', '<add key="ApiKey" value="$(ApiKey)"/>',
         '["token", "refresh_token"]', "- name: API_KEY\n  valueFrom:\n    secretKeyRef: {name: acme, key: api}",
         'variable "api_token" {\n  default = ""\n}', "headers = ('X-Api-Key', api_key)",
         "api_key, " + RANDOM, '"cache_mem", "cachemgr_passwd", "cache_peer"', "'test_fail', 'test_pass', 'test_summary'"]),
    # Code that keeps a value under a credential's name over a line's end, in a brace initialiser, as the default a
    # reference falls back to, returned by a getter named for it, or after a header's name in one string.
    "code-forms": (
        ['static const std::string AccountKey{\n    "' + RANDOM + '"};',
         'public static final String ACCOUNT_KEY\n        = "' + RANDOM + '";',
         'export const key =\n  process.env.ACCOUNT_KEY ||\n  "' + RANDOM + '";',
         "token = config.token ?? '" + RANDOM + "'",
         'func getServiceToken() string { return "' + RANDOM + '" }',
         'def get_api_key(self) -> str:\n    return "' + RANDOM + '"', 'auth_token: "X-Authorization ' + RANDOM + '"'],
        ['const key = process.env.API_KEY || ""', 'token = process.env.TOKEN || "changeme"',
         "def get_token(self):\n    return self._token", "Token\n=====\nThe token is read from the environment.",
         'struct Key{\n  "name"}', 'api_key: "See the docs"', 'api_key: "Bearer ${API_TOKEN}"']),
    # A password compared with a literal in code, or stated in prose in quotes.
    "compared-or-stated": (
        ['if password == "123P4ssW0rd@@":', "if (user.password === 'Tr0ub4dor3xyz')", 'the password is "Tr0ub4dor3x"'],
        ["if password == other_password:", "if password == '':", 'the password is "changeme"',
         "password != confirm_password", "the password is required"]),
    # 'pat', a personal access token, as a name's last word (not inside one: 'compat', 'path').
    "pat-name": (
        ['ado_pat = "' + RANDOM + '"', "GITHUB_PAT=" + RANDOM],
        ["path = /home/user/x7f3a9c2e4b1d8f6a", "compat = 'py3'", "pattern = '[A-Za-z0-9]{32}'"]),
    # A number alone under a key's name is an id (an app's, an account's; Cloudinary's API key is public); under a
    # token's, a secret's or a password's name it is still one.
    "number-under-a-name": (
        ["db_password=2187324972341", "auth_token = 218873249723411", "client_secret: '218873249723411'"],
        ["apiKey=218873249723411", "app_key: 123456789012345", "cache_key = 20240101123456"]),
    # A value nearly all one character said again is filler, whatever word ends it; a random value is not, nor one
    # with a short run in it.
    "filled-with-one-character": (
        ['"aws_secret_access_key" = Kx9' + "a" * 30 + "Qm7Zt2Lw", "api_token=" + "0" * 20 + RANDOM[:12],
         "secret_key = '" + RANDOM[:10] + "AAAA" + RANDOM[10:] + "'"],
        ['"aws_secret_access_key" =  ' + "a" * 36 + "end", "api_token=" + "0" * 31 + "1",
         "password = '" + "x" * 20 + "yz'", "secret_key: " + "A" * 40 + "EXAMPLE"]),
    # A '%' that starts no escape is a character of the token (Twitter's keys have them), not URL-encoding; a '%E'
    # or '%d' inside a long random run is no format. A real escape is still decoded, and a real format passes.
    "percent-in-a-token": (
        ["twitter_token = ABOYKJCSVHKFGFYKVOJNRF%tjHNMzEpCIsmVvSFq1gzPI4%E4UY0w%L3X%dq95eFuxF%fGtbNy7RwoxiMRkP",
         "api_secret=" + RANDOM[:16] + "%zz" + RANDOM[16:]],
        ["auth_token = 'Bearer %s'", "api_key = 'key-%d-%s'", "secret=correct%20horse%20battery%20staple",
         "token = '%(token)s'", "password=%E4%BD%A0%E5%A5%BD"]),
    # A quoted value is the whole string up to its closing quote, a quote of the other kind inside it included (a
    # generated secret with punctuation in its alphabet); a short or worded string is still no secret.
    "quote-of-the-other-kind-inside": (
        ['jwtsecret: "7`D\'}/vYR)T;W5]EBrf;_&k>qX??]G&3CF=;@vyrVBp"', "api_secret = '7`D\"}/vYR)T;W5]EBrf;_&k>qX??'"],
        ['secret: "it\'s a secret"', "token = 'the \"token\" is read from the environment'", 'password: "a\'b"']),
    # A value in an element has a sentence's or a statement's punctuation at its ends, which is not part of it.
    "element-with-punctuation-at-its-ends": (
        ["<secret>{AQAAABAAA ." + RANDOM + ";}</secret>", "<password>(" + RANDOM + ".)</password>"],
        ["<secret>{AQAAABAAA .ok;}</secret>", "<token>(see the docs.)</token>"]),
}


@pytest.mark.parametrize("name,text", [(n, t) for n, (attacks, _) in CLASSES.items() for t in attacks])
def test_each_class_is_refused(inspector, name, text):
    finding = sent(inspector, text)
    assert finding is not None and finding.rule == "credential", text


@pytest.mark.parametrize("name,text", [(n, t) for n, (_, benign) in CLASSES.items() for t in benign])
def test_each_class_benign_counterpart_passes(inspector, name, text):
    assert sent(inspector, text) is None, text

