"""A learned encoder in front of a classifier, as two named children (``encoder``,
``classifier``), so that a staged experiment can pretrain the encoder, then load and freeze it
(``freeze: [encoder]``) while the classifier trains."""
from __future__ import annotations

from network.events import Activity
from network.layers import Layer
from network.network import Model, NetworkOutput
from settings import Factory
from settings.registries import MODELS


@MODELS.register
class EncoderClassifier(Model):
    """``encoder`` (a layer: STAL, ConvSTAL, ...) turns the input into spikes, ``classifier`` (a
    model: SRNN, Spikformer, Network) classifies them; the classifier is built for the encoder's
    output size (an int, or a shape ``(C, H, W)``). The output's traces are the encoder's, then
    the classifier's, so the encoder's penalty terms (network/stal.py) reach the losses.

    Args:
        encoder: the encoding layer.
        classifier: the model that classifies the encoder's spikes.
    """

    takes_images = True  # inputs [T, B, C, H, W] (data layout: image)

    def __init__(self, input_size: int | tuple[int, ...], encoder: Factory[Layer], classifier: Factory[Model]):
        super().__init__()
        self.input_size = input_size
        self.encoder = encoder(in_features=input_size) if isinstance(encoder, Factory) else encoder
        size = self.encoder.out_features
        self.classifier = classifier(input_size=size) if isinstance(classifier, Factory) else classifier

    @property
    def out_features(self) -> int:
        return self.classifier.out_features

    def forward(self, x: Activity) -> NetworkOutput:
        """``x [T, B, ...]`` -> the classifier's scores ``[B, C]``; traces: the encoder's, then the classifier's."""
        encoded = self.encoder(x)
        out = self.classifier(encoded.out)
        return NetworkOutput(out.scores, [encoded, *out.traces], out.readout)
