#!/bin/sh
# Generates a repository of six suites of issue 18's shape, to time `cargo xtask init`'s
# check of its guesses (docs/design.md, "How long init's check takes"):
#   sh xtask/tests/data/init-six-suites.sh DIR             six services with src/ layouts, a
#       pyproject.toml each, no uv.lock, the tests' dependencies in one tests/requirements.txt
#       at the root that does not name pytest (every guess collects only with that file);
#   sh xtask/tests/data/init-six-suites.sh DIR --declared  the same, each service declaring
#       its dependencies in its pyproject.toml instead (six distinct environments).
set -eu
dir=$1
declared=${2:-}
rm -rf "$dir"
mkdir -p "$dir/tests"
cd "$dir"
printf '[workspace]\nmembers = []\n' > Cargo.toml
printf 'six==1.17.0\npython-dateutil==2.9.0.post0\n' > tests/requirements.txt
set -- attrs==25.4.0 tomli-w==1.2.0 packaging==25.0 idna==3.10 certifi==2025.8.3 colorama==0.4.6
for s in auth billing catalog orders search users; do
  mkdir -p "services/$s/src/$s" "services/$s/tests"
  deps=""
  if [ "$declared" = "--declared" ]; then
    deps="\"six==1.17.0\", \"python-dateutil==2.9.0.post0\", \"$1\""
  fi
  shift
  printf '[project]\nname = "%s"\nversion = "0.1.0"\nrequires-python = ">=3.11"\ndependencies = [%s]\n' \
    "$s" "$deps" > "services/$s/pyproject.toml"
  printf 'def name():\n    return "%s"\n' "$s" > "services/$s/src/$s/__init__.py"
  for i in 1 2 3 4 5; do
    printf 'import six\nfrom dateutil import parser\n\nimport %s\n\n\ndef test_%s():\n    assert %s.name() == "%s" and six.PY3 and parser.parse("2026-01-0%s").day == %s\n' \
      "$s" "$i" "$s" "$s" "$i" "$i" > "services/$s/tests/test_$i.py"
  done
done
if [ "$declared" = "--declared" ]; then
  rm tests/requirements.txt
fi
