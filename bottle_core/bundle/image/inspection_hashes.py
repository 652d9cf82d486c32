"""Password hashes and derived secrets, judged by their published formats: a hash of a password is credential
material (cracked offline, replayed where a hash is accepted), whatever it is written in.

The formats are crypt(3)'s modular ones (``$id$[params$]salt$hash``, as glibc,
libxcrypt, passlib and Django write them) and the Kerberos ticket forms that
password crackers take. Each names its lengths and alphabet, so a shell's
``$1$2`` or a price does not match.
"""

from __future__ import annotations

import re

#: crypt(3)'s base64 alphabet ('./0-9A-Za-z') and the standard one some formats use (argon2, Django's pbkdf2).
_C = r"[./0-9A-Za-z]"
_B = r"[A-Za-z0-9+/]"

#: One regex per published format: md5-crypt and Apache's apr1; bcrypt ($2$, $2a$, $2b$, $2x$, $2y$); sha256-crypt
#: and sha512-crypt with optional rounds; yescrypt ($y$) and gost-yescrypt ($gy$), scrypt ($7$); argon2 (PHC
#: string); Cisco's type 8 (PBKDF2) and type 9 (scrypt); PBKDF2 as passlib ($pbkdf2-sha256$) and Django (pbkdf2_sha256$) write it; Kerberos' TGS-REP, AS-REP
#: and pre-authentication forms ($krb5tgs$, $krb5asrep$, $krb5pa$).
PASSWORD_HASH = re.compile(
    r"(?<![\w$])(?:"
    rf"\$(?:1|apr1)\${_C}{{0,8}}\${_C}{{22}}"
    rf"|\$2[abxy]?\$\d\d\${_C}{{53}}"
    rf"|\$5\$(?:rounds=\d{{1,9}}\$)?{_C}{{0,16}}\${_C}{{43}}"
    rf"|\$6\$(?:rounds=\d{{1,9}}\$)?{_C}{{0,16}}\${_C}{{86}}"
    rf"|\$g?y\${_C}{{1,20}}\${_C}{{1,86}}\${_C}{{43}}"
    rf"|\$7\${_C}{{11,}}\${_C}{{43}}"
    rf"|\$[89]\${_C}{{14}}\${_C}{{43}}"
    rf"|\$argon2(?:id|i|d)\$(?:v=\d+\$)?m=\d+,t=\d+,p=\d+\${_B}{{8,}}\${_B}{{16,}}"
    rf"|\$?pbkdf2[-_](?:sha1|sha256|sha512)\$\d{{1,9}}\$[./0-9A-Za-z+=]{{2,}}\$[./0-9A-Za-z+=]{{16,}}"
    r"|\$krb5(?:tgs|asrep|pa)\$[^\s]{0,400}?[0-9a-fA-F]{32,}"
    r")(?![\w$])")


def carries_data(match: re.Match) -> bool:
    """The hash part after the last '$' is not a run of a few characters (a format's stand-in, ``$2b$12$....``)."""
    return len(set(match.group().rsplit("$", 1)[-1])) > 4
