# The API with every plugin of this repository installed.
FROM python:3.11-slim
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir . plugins/*/ \
    && useradd --create-home restplug && mkdir -p var && chown restplug var
USER restplug
ENV RESTPLUG_HOST=0.0.0.0
EXPOSE 8080
CMD ["restplug", "serve", "--workers", "2"]
