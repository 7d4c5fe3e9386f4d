"""Installs the xtask's pinned uv with nothing but Python's standard library (no pip).

Run by the xtask (xtask/src/toolchain.rs) as `python -I install_uv.py DEST PINS`, where PINS
is JSON: {"version": "0.13.8", "wheels": [{"file": ..., "sha256": ..., "url": ...}, ...]},
the wheels the xtask pins, most preferred first. It picks the first wheel this host can run,
finds it in the package index pip or uv would use (PEP 691 JSON or the HTML simple API),
downloads it, refuses it unless its sha256 is the pinned one, and extracts its `uv` binary
to DEST/bin/uv. DEST is a fresh directory the xtask renames into place afterwards, so a
failure here leaves nothing installed.

Success prints one line on stdout. Failure exits 1 with two lines on stderr: what went
wrong, and the exact wheel to fetch by hand.
"""

import base64
import configparser
import glob
import hashlib
import html.parser
import json
import os
import platform
import re
import ssl
import struct
import sys
import urllib.error
import urllib.parse
import urllib.request
import zipfile

PYPI = "https://pypi.org/simple/"
DEFAULT_TIMEOUT = 30.0
CHUNK = 1 << 16


class Failure(Exception):
    pass


# --- which wheel this host runs ---------------------------------------------------------


def machine():
    m = platform.machine().lower()
    if sys.platform == "darwin":
        return {"aarch64": "arm64"}.get(m, m)
    m = {"amd64": "x86_64", "arm64": "aarch64"}.get(m, m)
    if struct.calcsize("P") == 4:  # a 32-bit Python on a 64-bit kernel
        m = {"x86_64": "i686", "aarch64": "armv7l"}.get(m, m)
    return m


def glibc():
    try:
        name, version = os.confstr("CS_GNU_LIBC_VERSION").split()
    except (AttributeError, OSError, ValueError):
        return None
    if name != "glibc":
        return None
    major, minor = version.split(".")[:2]
    return int(major), int(re.match(r"\d+", minor).group())


def musl():
    return bool(glob.glob("/lib/ld-musl-*.so.1"))


def runs_here(tag):
    """Whether one platform tag of a wheel's file name fits this host."""
    arch = machine()
    if sys.platform.startswith("linux"):
        libc = glibc()
        legacy = {"manylinux2014": (2, 17), "manylinux2010": (2, 12), "manylinux1": (2, 5)}
        for prefix, version in legacy.items():
            if tag.startswith(prefix + "_"):
                return libc is not None and libc >= version and tag[len(prefix) + 1 :] == arch
        m = re.fullmatch(r"manylinux_(\d+)_(\d+)_(.+)", tag)
        if m:
            return libc is not None and libc >= (int(m[1]), int(m[2])) and m[3] == arch
        m = re.fullmatch(r"musllinux_(\d+)_(\d+)_(.+)", tag)
        if m:
            return libc is None and musl() and m[3] == arch
        return tag == "linux_" + arch
    if sys.platform == "darwin":
        m = re.fullmatch(r"macosx_(\d+)_(\d+)_(.+)", tag)
        if not m or m[3] not in (arch, "universal2"):
            return False
        release = tuple(int(p) for p in (platform.mac_ver()[0] or "0").split(".")[:2])
        return release >= (int(m[1]), int(m[2]))
    return False


def pick(wheels):
    for wheel in wheels:
        platforms = wheel["file"][: -len(".whl")].split("-")[-1]
        if any(runs_here(tag) for tag in platforms.split(".")):
            return wheel
    return None


# --- where pip or uv would look ---------------------------------------------------------


def pip_config():
    """pip's settings from its configuration files, in pip's order (a later file wins, and
    [install] in any file over [global]); PIP_CONFIG_FILE=os.devnull turns the files off."""
    chosen = os.environ.get("PIP_CONFIG_FILE")
    if chosen == os.devnull:
        return {}
    home = os.path.expanduser("~")
    xdg_dirs = os.environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(os.pathsep)
    xdg_home = os.environ.get("XDG_CONFIG_HOME", os.path.join(home, ".config"))
    files = [os.path.join(d, "pip", "pip.conf") for d in xdg_dirs if d]
    files.append("/etc/pip.conf")
    files.append(os.path.join(home, ".pip", "pip.conf"))
    files.append(os.path.join(xdg_home, "pip", "pip.conf"))
    files.append(os.path.join(sys.prefix, "pip.conf"))
    if chosen:
        files.append(chosen)
    sections = {"global": {}, "install": {}}
    for path in files:
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue
        for section, settings in sections.items():
            if parser.has_section(section):
                for key, value in parser.items(section):
                    settings[key.replace("_", "-")] = (value.strip(), f"{path} [{section}]")
    return {**sections["global"], **sections["install"]}


def index_and_origin(config):
    for name in ("PIP_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX_URL"):
        if os.environ.get(name, "").strip():
            return os.environ[name].strip(), name
    if "index-url" in config:
        value, where = config["index-url"]
        return value, f"index-url in {where}"
    return PYPI, "PyPI, the default"


def timeout(config):
    for name in ("UV_HTTP_TIMEOUT", "PIP_DEFAULT_TIMEOUT", "PIP_TIMEOUT"):
        if os.environ.get(name, "").strip():
            return seconds(os.environ[name], name), name
    for key in ("timeout", "default-timeout"):
        if key in config:
            value, where = config[key]
            where = f"{key} in {where}"
            return seconds(value, where), where
    return DEFAULT_TIMEOUT, "the default"


def seconds(text, origin):
    try:
        value = float(text)
    except ValueError:
        value = 0
    if not value > 0:
        raise Failure(f"{origin} is {text!r}, not a number of seconds")
    return value


def ssl_context(config):
    cert = os.environ.get("PIP_CERT") or config.get("cert", (None,))[0]
    try:
        return ssl.create_default_context(cafile=cert or None)
    except (OSError, ssl.SSLError) as err:
        raise Failure(f"pip's certificate bundle {cert} cannot be read: {err}") from None


# --- fetching ---------------------------------------------------------------------------


def shown(url):
    """`url` with any password masked, for messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{parts.username}:****@{parts.hostname}{port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


class Fetcher:
    def __init__(self, index, seconds, context):
        self.seconds = seconds
        self.context = context
        self.shown_index = shown(index).rstrip("/") + "/"
        parts = urllib.parse.urlsplit(index)
        self.auth = None
        if parts.username is not None:
            self.auth = (parts.hostname, parts.username, parts.password or "")
            netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
            index = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
        self.index = index.rstrip("/") + "/"

    def open(self, url, accept):
        request = urllib.request.Request(url, headers={"Accept": accept, "User-Agent": "xtask"})
        if self.auth and urllib.parse.urlsplit(url).hostname == self.auth[0]:
            pair = f"{self.auth[1]}:{self.auth[2]}".encode()
            request.add_header("Authorization", "Basic " + base64.b64encode(pair).decode())
        try:
            return urllib.request.urlopen(request, timeout=self.seconds, context=self.context)
        except urllib.error.HTTPError as err:
            raise Failure(f"{shown(url)} answered HTTP {err.code} {err.reason}") from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise Failure(f"could not fetch {shown(url)}: {reason}") from None


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []
        self.href = None
        self.text = ""

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.href = dict(attrs).get("href")
            self.text = ""

    def handle_data(self, data):
        if self.href is not None:
            self.text += data

    def handle_endtag(self, tag):
        if tag == "a" and self.href is not None:
            self.links.append((self.text.strip(), self.href))
            self.href = None


def find_in_index(fetcher, filename):
    """The URL of `filename` as the index's page for uv lists it."""
    page = fetcher.index + "uv/"
    accept = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"
    try:
        with fetcher.open(page, accept) as response:
            base = response.geturl()
            kind = response.headers.get_content_type()
            body = response.read()
    except (OSError, ValueError) as err:  # a read that stalls past the timeout
        raise Failure(f"reading {shown(page)}: {err}") from None
    if kind == "application/vnd.pypi.simple.v1+json":
        files = [(f.get("filename"), f.get("url")) for f in json.loads(body).get("files", [])]
    else:
        parser = Links()
        parser.feed(body.decode("utf-8", "replace"))
        files = [
            (text or href.split("#")[0].rsplit("/", 1)[-1], href) for text, href in parser.links
        ]
    for name, href in files:
        if name == filename and href:
            return urllib.parse.urljoin(base, href).split("#")[0]
    raise Failure(f"the index page {shown(page)} lists no {filename}")


def download(fetcher, url, path):
    digest = hashlib.sha256()
    try:
        with fetcher.open(url, "*/*") as response, open(path, "wb") as out:
            while True:
                chunk = response.read(CHUNK)
                if not chunk:
                    break
                digest.update(chunk)
                out.write(chunk)
    except (OSError, ValueError) as err:
        raise Failure(f"downloading {shown(url)}: {err}") from None
    return digest.hexdigest()


def extract(wheel_path, version, dest):
    member = f"uv-{version}.data/scripts/uv"
    target = os.path.join(dest, "bin", "uv")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    try:
        with zipfile.ZipFile(wheel_path) as wheel, wheel.open(member) as src:
            with open(target, "wb") as out:
                while True:
                    chunk = src.read(CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
    except (KeyError, zipfile.BadZipFile) as err:
        raise Failure(f"the wheel holds no {member}: {err}") from None
    os.chmod(target, 0o755)


def main():
    dest, pins = sys.argv[1], json.loads(sys.argv[2])
    version = pins["version"]
    wheel = pick(pins["wheels"])
    if wheel is None:
        raise Failure(
            f"uv {version} has no pinned wheel for this host ({sys.platform}, {machine()}); "
            f"install uv {version} another way"
        )
    by_hand = (
        f"By hand: download {wheel['url']} (sha256 {wheel['sha256']}), a zip file whose"
        f" uv-{version}.data/scripts/uv is uv"
    )
    where = ""
    try:
        config = pip_config()
        index, origin = index_and_origin(config)
        seconds, seconds_origin = timeout(config)
        fetcher = Fetcher(index, seconds, ssl_context(config))
        where = (
            f"the index {fetcher.shown_index} (from {origin};"
            f" {seconds:g} s per read, from {seconds_origin}): "
        )
        url = find_in_index(fetcher, wheel["file"])
        os.makedirs(dest, exist_ok=True)
        part = os.path.join(dest, wheel["file"] + ".part")
        got = download(fetcher, url, part)
        if got != wheel["sha256"]:
            os.remove(part)
            raise Failure(
                f"refused {shown(url)}: its sha256 is {got}, not the pinned {wheel['sha256']} "
                "(a tampered or wrong file; nothing was installed)"
            )
        extract(part, version, dest)
        os.remove(part)
    except (Failure, ValueError) as err:  # ValueError: a page that is not JSON
        raise Failure(f"{where}{err}\n{by_hand}") from None
    print(f"uv {version}: {wheel['file']} from {shown(url)}, sha256 verified")


if __name__ == "__main__":
    try:
        main()
    except Failure as err:
        print(err, file=sys.stderr)
        sys.exit(1)
