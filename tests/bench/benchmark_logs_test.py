"""The GPU run's benchmarks, run here on the CPU at small sizes: they finish, and bench/check_targets.py
reads every line the GPU run will be judged by (a harness that crashes or changes its format would
otherwise be found on a lent GPU, in its short time).

    benchmark_logs_test.py BUILD_DIR
"""
import importlib.util
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("check_targets", os.path.join(HERE, "..", "..", "bench", "check_targets.py"))
check_targets = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_targets)
BUILD = sys.argv.pop(1) if len(sys.argv) > 1 else "build"

# Every kernel and pass kernel_bandwidth measures on the CPU, in both dtypes where it has them (the
# RMSNorm operands for bf16 products, "rms-3ops" and "rms+casts", in fp32 only; on a GPU it adds
# the looping cross-entropy kernel on a block per row, "xent-rows", and the norms with their parameter
# gradients summed apart, "rms-apart" and "ln-apart").
EXPECTED_ROWS = {(kernel, pass_, dtype)
                 for kernel, passes in {"rmsnorm": ["fwd", "fwd+bwd"], "layernorm": ["fwd", "fwd+bwd"],
                                        "add+ln": ["fwd", "fwd+bwd"], "add+rms": ["fwd", "fwd+bwd"],
                                        "gelu_bias": ["fwd", "fwd+bwd"], "swiglu": ["fwd", "fwd+bwd"],
                                        "rope": ["fwd"], "xent": ["fwd", "fwd+bwd"], "xent-split": ["fwd+bwd"]}.items()
                 for pass_ in passes for dtype in ["bf16", "fp32"]} | {("adamw", "step", "fp32"),
                                                                       ("grad_norm", "reduce", "fp32"),
                                                                       ("rms-3ops", "fwd+bwd", "fp32"),
                                                                       ("rms+casts", "fwd+bwd", "fp32")}


def run(*command):
    result = subprocess.run(command, capture_output=True, text=True, timeout=240)
    if result.returncode != 0:
        raise AssertionError(f"{command} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result.stdout


class BenchmarkLogsTest(unittest.TestCase):
    def test_kernel_bandwidth_prints_every_row_check_targets_reads(self):
        log = run(os.path.join(BUILD, "bench", "kernel_bandwidth"), "--device", "cpu", "--dtype", "both",
                  "--sizes", "small")
        with tempfile.NamedTemporaryFile("w", suffix=".log") as f:
            f.write(log)
            f.flush()
            rows = {(kernel, pass_, dtype) for kernel, pass_, dtype, size, copy, speedup in check_targets.kernel_rows(f.name)
                    if size == "small"}
        self.assertEqual(rows, EXPECTED_ROWS, log)

    def test_cross_entropy_memory_lines_give_a_ratio_per_precision(self):
        lines = "".join(run(os.path.join(BUILD, "bench", "cross_entropy_memory"), mode, "256", "1000", "64", "cpu",
                            precision)
                        for precision in ["fp32", "bf16"] for mode in ["eager", "chunked"])
        with tempfile.NamedTemporaryFile("w", suffix=".log") as f:
            f.write(lines)
            f.flush()
            verdicts = check_targets.check_memory(f.name)
        for precision in ["precision=fp32", "precision=bf16-autocast"]:
            found = [v for v in verdicts if precision in v]
            self.assertEqual(len(found), 1, verdicts)
            self.assertRegex(found[0], r"chunked \d+ MB / eager \d+ MB = \d+\.\d{3} ")

    def test_cross_entropy_memory_refuses_bad_arguments_in_one_line(self):
        program = os.path.join(BUILD, "bench", "cross_entropy_memory")
        for arguments in [[], ["chunk"], ["eager", "0"], ["eager", "8x"], ["eager", "8", "16", "4", "gpu"],
                          ["eager", "8", "16", "4", "cpu", "fp16"]]:
            result = subprocess.run([program, *arguments], capture_output=True, text=True, timeout=60)
            self.assertEqual(result.returncode, 2, arguments)
            self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
            self.assertIn("usage:", result.stderr)


if __name__ == "__main__":
    unittest.main()
