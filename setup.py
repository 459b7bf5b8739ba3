"""Build the compiled cores (Cython) that sit under the Python modules of the same name.

Everything else about the package is declared in pyproject.toml; this file only lists the
extensions, so that ``pip install -e .`` (or ``make``) builds them with the machine's C
compiler and Python headers.  Add a new extension (e.g. a log tokenizer beside its Python
module) to ``EXTENSIONS``; ``make`` rebuilds when a .pyx changes.
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

EXTENSIONS = [
    # capture/_walk.pyx beside capture/pcapfile.py: pcap / pcapng record walk
    Extension("capture._walk", ["capture/_walk.pyx"]),
    # capture/_decode.pyx beside capture/fastpath.py: link / IP / TCP header decode
    Extension("capture._decode", ["capture/_decode.pyx"]),
    # capture/_flows.pyx beside capture/flows.py: connection accounting
    Extension("capture._flows", ["capture/_flows.pyx"]),
]

# boundscheck stays on: these modules index bytes that come from captures.
DIRECTIVES = {"language_level": 3, "boundscheck": True, "wraparound": False}

setup(ext_modules=cythonize(EXTENSIONS, compiler_directives=DIRECTIVES, quiet=True))
