"""Images in and out, and what is done to them.

- :mod:`.io`: the one loader and saver of the app and the command lines (:func:`~.io.load_image`,
  :func:`~.io.save_image`), over :mod:`.source` (where the bytes come from: a path, an upload, a
  stream; bomb-safe header reads) and :mod:`.pixels` (array conversions, bit depth, orientation);
- :mod:`.degrade`: the MATLAB-compatible bicubic resize that makes LR inputs;
- :mod:`.metrics`: PSNR / SSIM on the Y channel;
- :mod:`.atomic`: files written whole or not at all (images, checkpoints).
"""
