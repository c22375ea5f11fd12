"""bench/check_targets.py against logs in the formats the benchmarks print: verdicts on both
sides of each threshold, small sizes ignored, missing logs reported, usage errors."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "check_targets.py")

KERNELS = """device cuda:0, copy bandwidth 3900.0 GB/s (device-to-device copy, read + write)
kernel     pass     dtype size        elements   fused ms   eager ms     GB/s   %copy  speedup
rmsnorm    fwd      bf16  small         393216     0.0100     0.0300     78.6    2.0%    3.00x
rmsnorm    fwd      bf16  large      268435456     0.3400     1.2000   3157.9   81.0%    3.53x
swiglu     fwd      bf16  large      268435456     0.5100     0.8000   3158.0   81.0%    1.57x
gelu_bias  fwd+bwd  bf16  large      268435456     1.0000     1.5000   3000.0   76.9%    1.50x
adamw      step     fp32  124M       124475904     1.2000     9.0000   2904.0   74.5%    7.50x
xent-rows  fwd+bwd  bf16  large      525336576     0.7000     2.1000   3001.0   76.9%    3.00x
ln-apart   fwd+bwd  fp32  large      268435456     1.8000     2.5000   2982.6   76.5%    1.39x
layernorm  fwd+bwd  bf16  large      268435456     0.9000     1.1700   2982.6   76.5%    1.30x
layernorm  fwd+bwd  fp32  large      268435456     1.8000     1.9800   2982.6   76.5%    1.10x
"""

MEMORY = """eager tokens=8192 vocab=128256 hidden=2048 device=cuda:0 precision=fp32 loss=1.0e+05 peak_above_inputs_MB=13000 seconds=0.50
chunked tokens=8192 vocab=128256 hidden=2048 device=cuda:0 precision=fp32 loss=1.0e+05 peak_above_inputs_MB=2200 seconds=0.40
eager tokens=8192 vocab=128256 hidden=2048 device=cuda:0 precision=bf16-autocast loss=1.0e+05 peak_above_inputs_MB=8000 seconds=0.30
chunked tokens=8192 vocab=128256 hidden=2048 device=cuda:0 precision=bf16-autocast loss=1.0e+05 peak_above_inputs_MB=2400 seconds=0.30
"""


def gpt2_line(run, tokens_per_s):
    return json.dumps({"run": run, "tokens_per_s": tokens_per_s, "mfu": 0.3, "peak_memory_bytes": 2**34,
                       "sdpa_backend": "flash"})


class CheckTargetsTest(unittest.TestCase):
    def run_on(self, files):
        with tempfile.TemporaryDirectory() as folder:
            for name, text in files.items():
                with open(os.path.join(folder, name), "w") as f:
                    f.write(text)
            result = subprocess.run([sys.executable, SCRIPT, folder], capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout.splitlines()

    def line_with(self, lines, *needles):
        found = [l for l in lines if all(n in l for n in needles)]
        self.assertEqual(len(found), 1, (needles, lines))
        return found[0]

    def test_kernel_rows_at_large_sizes_get_a_verdict_each(self):
        lines = self.run_on({"kernel_bandwidth.log": KERNELS})
        self.assertFalse([l for l in lines if "small" in l])
        self.assertRegex(self.line_with(lines, "rmsnorm", "large"), r"81\.0% met .* 3\.53x met$")
        self.assertRegex(self.line_with(lines, "swiglu", "large"),
                         r"met .* 1\.57x MISSED \(bytes cap it at 1\.67x: 94% of that\)$")
        self.assertRegex(self.line_with(lines, "gelu_bias", "large"), r"1\.50x MISSED \(bytes cap it at 1\.60x: 94%")
        self.assertRegex(self.line_with(lines, "adamw", "124M"), r"74\.5% MISSED .* 7\.50x met$")
        # A ceiling that depends on the dtype (ours sums the parameter gradients in the pass in bf16).
        self.assertRegex(self.line_with(lines, "layernorm", "bf16"), r"1\.30x MISSED \(bytes cap it at 1\.40x: 93%")
        self.assertRegex(self.line_with(lines, "layernorm", "fp32"), r"1\.10x MISSED \(bytes cap it at 1\.00x: 110%")
        # Another way of running a kernel is shown, without a verdict.
        comparison = self.line_with(lines, "xent-rows")
        self.assertRegex(comparison, r"76\.9% +3\.00x +\(the looping kernel, a block per row, not a target\)$")
        self.assertNotIn("MISSED", comparison)
        apart = self.line_with(lines, "ln-apart")
        self.assertRegex(apart, r"76\.5% +1\.39x +\(parameter gradients summed apart, not a target\)$")

    def test_memory_ratio_per_precision(self):
        lines = self.run_on({"cross_entropy_memory.log": MEMORY})
        self.assertRegex(self.line_with(lines, "precision=fp32"), r"= 0\.169 \(<= 0\.25\) met$")
        self.assertRegex(self.line_with(lines, "precision=bf16-autocast"), r"= 0\.300 \(<= 0\.25\) MISSED$")

    def test_gpt2_fused_against_unfused_and_pytorch(self):
        runs = [gpt2_line("albion fused", 300000.0), gpt2_line("albion unfused", 250000.0),
                gpt2_line("pytorch eager", 200000.0), gpt2_line("pytorch compile", 280000.0)]
        lines = self.run_on({"gpt2_results.jsonl": "\n".join(runs) + "\n"})
        self.assertRegex(self.line_with(lines, "fused / unfused"), r"1\.200x met$")
        self.assertIn("1.071x", self.line_with(lines, "fused / pytorch compile"))
        slower = [gpt2_line("albion fused", 200000.0), gpt2_line("albion unfused", 250000.0)]
        lines = self.run_on({"gpt2_results.jsonl": "\n".join(slower) + "\n"})
        self.assertRegex(self.line_with(lines, "fused / unfused"), r"MISSED$")

    def test_llama_fused_against_unfused_has_its_own_section(self):
        runs = [gpt2_line("albion fused", 90000.0), gpt2_line("albion unfused", 60000.0)]
        lines = self.run_on({"llama_results.jsonl": "\n".join(runs) + "\n"})
        self.assertIn("Llama 3.2 1B training:", lines)
        self.assertRegex(self.line_with(lines, "fused / unfused"), r"1\.500x met$")
        self.assertIn("gpt2_results.jsonl: not measured", lines)

    def test_missing_logs_are_reported_not_measured(self):
        lines = self.run_on({})
        self.assertEqual(len([l for l in lines if l.endswith("not measured")]), 4)

    def test_usage_error_exits_2(self):
        result = subprocess.run([sys.executable, SCRIPT, "/nonexistent-folder"], capture_output=True, text=True)
        self.assertEqual(result.returncode, 2)
        self.assertIn("usage", result.stderr)


if __name__ == "__main__":
    unittest.main()
