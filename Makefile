# Two commands do all set-up on a fresh machine:
#   make demo   creates .venv when missing, installs everything, runs `neurodeploy demo`
#   make test   the same set-up, then the test suite on two worker processes (pytest-xdist, one file per worker at a time)
#   make docs   the documentation site (docs/, mkdocs.yml) into out/site
# Every pip call goes through constraints.txt (torch==2.13.0 CPU wheel; no CUDA downloads).
PYTHON ?= python3.11
VENV   := .venv
PIP    := $(VENV)/bin/pip
PIPC   := $(PIP) install --disable-pip-version-check -q -c constraints.txt
STAMP  := $(VENV)/.installed

.PHONY: demo test docs venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt Makefile
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(PIPC) -e '.[test,ray,docs]'
	# lava-nc 0.10.0 declares Python <3.11; norse 1.1.0 and spikingjelly 2.0.0 pull torchvision; sinabs 3.1.3 pins
	# nir<=1.0.4 and pulls samna (its chip back-end, unused here); neurobench 2.3.0 pulls torchaudio and tonic
	# (its metrics import torch and snntorch only); rockpool 3.1.0 for its NIR export: all without deps (the
	# test extra brings what they import:
	# loguru, tqdm for spikingjelly; pbr for sinabs)
	$(PIPC) --no-deps --ignore-requires-python lava-nc==0.10.0 norse==1.1.0 snntorch==1.0.0 spikingjelly==2.0.0 \
		sinabs==3.1.3 neurobench==2.3.0 rockpool==3.1.0
	$(VENV)/bin/python -c "import torch, sys; assert '+cpu' in torch.__version__ or not torch.version.cuda, torch.__version__"
	$(VENV)/bin/python -m neurodeploy.runtime.lava_compat --check
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/neurodeploy demo --out out/demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -n 2 --dist loadfile

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir out/site

clean:
	rm -rf $(VENV) out .pytest_cache
