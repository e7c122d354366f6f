# The one nbgrader configuration of the workbook. Stock nbgrader commands run from the
# repository root read it, and so does `workbook` (release, check, grade).
#   nbgrader generate_assignment 01-attention --force   ==   workbook release 01-attention
import os

c = get_config()  # noqa: F821 - provided by traitlets when nbgrader loads this file

here = os.path.dirname(os.path.abspath(__file__))

c.CourseDirectory.course_id = "transformer-workbook"
c.CourseDirectory.root = here
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "course"
c.CourseDirectory.submitted_directory = "autograder/submitted"
c.CourseDirectory.autograded_directory = "autograder/autograded"
c.CourseDirectory.feedback_directory = "autograder/feedback"
# Only notebooks and the files they need are released.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "runs", "*.db"]

# What a student sees in place of a solution.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Cell timeout for autograding (nbgrader's default of 30 s is too short for training cells).
c.Execute.timeout = 300
# Keep runaway output from bloating the autograded notebooks.
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 40

# Grading: every student's kernel is forked from one process per grading run that has already
# imported these modules (so no student pays for importing torch), then sandboxed. List what
# the course's notebooks import; a module missing here is simply imported by the notebook.
c.GradingSandbox.preload = [
    "numpy", "torch", "matplotlib.pyplot", "tqdm.auto", "ipywidgets",
    "tokenizers", "transformers", "transformers.models.bert.modeling_bert",
    "transformers.models.llama.modeling_llama", "triton", "triton.language",
    "transformer_workbook", "transformer_workbook.checks", "transformer_workbook.models",
    "transformer_workbook.plots", "transformer_workbook.explorer", "transformer_workbook.measure",
    "transformer_workbook.data.reviews", "transformer_workbook.data.corpus",
    "transformer_workbook.adapter_files", "regex", "scipy.optimize", "scipy.special",
    "torch.utils.flop_counter",
]
# Imported too, but only in a run that grades the assignment named: libraries that one or
# two notebooks import. A bigger factory forks slower kernels, and a run that grades only
# notebook 01 should not wait for peft (about 1.3 s of a 5.5 s preload on one core;
# docs/results/grading-benchmark.md). tests/test_preload.py checks that every module a
# notebook imports from these lists is listed for its assignment.
c.GradingSandbox.preload_for = {
    "03-bert-finetuning": ["torch.utils.tensorboard"],
    "06-lora-qlora": ["peft", "bitsandbytes"],
    "08-interview": ["peft", "bitsandbytes"],
    "09-scaling-and-moe": ["scipy.stats"],
    "11-serving-and-quantisation": ["peft", "bitsandbytes"],
    "12-cross-modal-search": ["faiss"],
}
