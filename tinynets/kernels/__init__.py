"""The fast paths: Numba kernels, beside the plain-NumPy versions that the lessons teach.

* ``conv_naive``: the teaching versions (loops, im2col/col2im in NumPy, depthwise by
  shifted slices), the reference every kernel is tested against;
* ``im2col``: im2col and col2im for the general convolution (then a BLAS GEMM);
* ``depthwise``: the direct depthwise convolution, forward and both gradients;
* ``norm``: BatchNorm fused with its activation, forward and backward.

Each kernel module is self-contained: Numba's disk cache would not notice an edit to a
function that a kernel inlines from another file.
"""
