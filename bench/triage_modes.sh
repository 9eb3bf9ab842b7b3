#!/usr/bin/env bash
# What each triage mode costs on the OTRF recordings (../shared/data/otrf) with the SigmaHQ
# Windows rules: per recording, the events in, and for each mode the model calls it makes and
# the prompt tokens it sends (from `csq triage --dry-run --json`, on the model's tokenizer):
#   model    csq triage FILE                      every event is a prompt
#   pipeline csq detect --json | csq triage       every alert is a prompt (an event N rules fired on: N)
#   hybrid   csq triage --rules                   every event a rule fired on is one prompt
#   rules    csq detect                           no model
# and whether the rules named the recording's ATT&CK technique (datasets.jsonl; a tag
# attack.tNNNN[.NNN] with the same technique or parent). With --generate N, the three model
# modes are also run on the model (answers of at most N tokens) and their wall time and answer
# tokens printed. A random-weight fixture model makes the token and call counts meaningful, not verdicts.
#   bench/triage_modes.sh [--csq build/csq] [--model DIR] [--data DIR] [--rules DIR]
#                         [--datasets "a b"] [--generate N] [--threads 2]
set -euo pipefail

csq=build/csq
fixtures=${CSQ_FIXTURES:-/work/shared/fixtures}
data=${CSQ_DATA:-/work/shared/data}
model=$fixtures/hf/qwen3-tiny-vocab
rules=
datasets=
generate=0
threads=2
while [ $# -gt 0 ]; do
  case "$1" in
    --csq) csq=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --rules) rules=$2; shift 2 ;;
    --datasets) datasets=$2; shift 2 ;;
    --generate) generate=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    *) echo "triage_modes.sh: unknown argument '$1'" >&2; exit 1 ;;
  esac
done
rules=${rules:-$data/sigma/rules/windows}
otrf=$data/otrf
[ -x "$csq" ] || { echo "triage_modes.sh: $csq is not an executable csq (give --csq)" >&2; exit 1; }
[ -f "$otrf/datasets.jsonl" ] || { echo "triage_modes.sh: no $otrf/datasets.jsonl (give --data)" >&2; exit 1; }
[ -d "$rules" ] || { echo "triage_modes.sh: no rules at $rules (give --rules)" >&2; exit 1; }
[ -n "$datasets" ] || datasets=$(jq -r '.file | sub("\\.jsonl\\.gz$"; "")' "$otrf/datasets.jsonl")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sum_prompt() { jq -s '[.[] | .prompt_tokens // 0] | add // 0'; }
count_prompts() { jq -s '[.[] | select(.prompt != null)] | length'; }

printf '%-58s %6s | %6s %9s | %6s %9s | %6s %9s | %6s %s\n' recording events model tokens pipeline tokens \
  hybrid tokens alerts technique
tot_e=0; tot_m=0; tot_mt=0; tot_p=0; tot_pt=0; tot_h=0; tot_ht=0; tot_hit=0; n=0
for d in $datasets; do
  f=$otrf/$d.jsonl.gz
  [ -f "$f" ] || { echo "triage_modes.sh: no recording $f" >&2; exit 1; }
  technique=$(jq -r --arg f "$d.jsonl.gz" 'select(.file == $f) | .techniques | join(",")' "$otrf/datasets.jsonl")
  "$csq" detect --rules "$rules" --events "$f" --json 2>/dev/null >"$tmp/alerts.jsonl"
  events=$(zcat -f "$f" | grep -c .)
  "$csq" triage --model "$model" --dry-run --json "$f" 2>/dev/null >"$tmp/model.jsonl"
  "$csq" triage --model "$model" --dry-run --json "$tmp/alerts.jsonl" 2>/dev/null >"$tmp/pipeline.jsonl"
  "$csq" triage --rules "$rules" --model "$model" --dry-run --json "$f" 2>/dev/null >"$tmp/hybrid.jsonl"
  m=$(count_prompts <"$tmp/model.jsonl"); mt=$(sum_prompt <"$tmp/model.jsonl")
  p=$(count_prompts <"$tmp/pipeline.jsonl"); pt=$(sum_prompt <"$tmp/pipeline.jsonl")
  h=$(count_prompts <"$tmp/hybrid.jsonl"); ht=$(sum_prompt <"$tmp/hybrid.jsonl")
  alerts=$(grep -c . "$tmp/alerts.jsonl" || true)
  # Named: a fired rule's tag is the recording's technique or its parent (T1003 for T1003.001) or a child.
  hit=$(jq -rs --arg t "$technique" '
      ($t | ascii_downcase | split(",") | map(split(".")[0])) as $want
      | [.[] | .tags[]? | ascii_downcase | select(startswith("attack.t")) | ltrimstr("attack.") | split(".")[0]]
      | if any(.[]; . as $x | $want | index($x)) then "named" else "-" end' "$tmp/alerts.jsonl")
  printf '%-58s %6d | %6d %9d | %6d %9d | %6d %9d | %6d %s (%s)\n' "$d" "$events" "$m" "$mt" "$p" "$pt" "$h" "$ht" \
    "$alerts" "$hit" "$technique"
  tot_e=$((tot_e + events)); tot_m=$((tot_m + m)); tot_mt=$((tot_mt + mt)); tot_p=$((tot_p + p))
  tot_pt=$((tot_pt + pt)); tot_h=$((tot_h + h)); tot_ht=$((tot_ht + ht)); n=$((n + 1))
  if [ "$hit" = named ]; then tot_hit=$((tot_hit + 1)); fi
  if [ "$generate" -gt 0 ]; then
    for mode in model pipeline hybrid; do
      start=$(date +%s.%N)
      if [ $mode = model ]; then
        "$csq" triage --model "$model" --threads "$threads" --max-tokens "$generate" -q "$f" >"$tmp/out.jsonl"
      elif [ $mode = pipeline ]; then
        "$csq" triage --model "$model" --threads "$threads" --max-tokens "$generate" -q "$tmp/alerts.jsonl" >"$tmp/out.jsonl"
      else
        "$csq" triage --rules "$rules" --model "$model" --threads "$threads" --max-tokens "$generate" -q "$f" \
          2>/dev/null >"$tmp/out.jsonl"
      fi
      end=$(date +%s.%N)
      jq -rs --arg mode "$mode" --arg s "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')" '
          "  \($mode) on the model: \(length) lines, \([.[] | select(.decided_by == "model")] | length) model calls, " +
          "prompt tokens \([.[] | .prompt_tokens] | add), answer tokens \([.[] | .answer_tokens] | add), \($s) s"' \
        "$tmp/out.jsonl"
    done
  fi
done
printf '%-58s %6d | %6d %9d | %6d %9d | %6d %9d | %6s %d of %d named\n' "total" "$tot_e" "$tot_m" "$tot_mt" "$tot_p" \
  "$tot_pt" "$tot_h" "$tot_ht" "" "$tot_hit" "$n"
