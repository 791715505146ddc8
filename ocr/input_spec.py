"""The recogniser's input geometry, torch-free.

The model, line preparation, CTC decoding and page preprocessing all agree on
these two numbers; they live here so that the onnxruntime path (CLI, REST API,
page pipeline) never has to import torch just to read them.
"""

#: every line is resized to this height (the pretrained CNN's input height)
INPUT_HEIGHT = 48
#: horizontal down-sampling: one CTC time step covers this many input pixels
STRIDE_X = 8
