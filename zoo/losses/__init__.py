"""Training losses: GAN objectives and LeCam, PatchGAN and audio discriminators, perceptual
(LPIPS-style VGG16), entropy, disentanglement and semantic-alignment terms.

Import the submodule you need (``from zoo.losses.gan import discriminator_loss``); nothing
heavy is imported here.
"""
